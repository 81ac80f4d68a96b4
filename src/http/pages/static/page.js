// The hosted verification page's script (docs/hosted-page.md). The page works without it as a plain form;
// with it, submits happen in place (the server's HTML answer replaces the card), the expiry and resend
// countdowns tick, and a verified result is posted to the embedding site's origin — only an origin the
// app allows, put on <body data-origin> by the server, and never "*".
(function () {
  'use strict';

  var body = document.body;
  var timers = [];
  var posted = false;

  function clearTimers() {
    while (timers.length) window.clearInterval(timers.pop());
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var rest = s % 60;
    return Math.floor(s / 60) + ':' + (rest < 10 ? '0' : '') + rest;
  }

  function card() {
    return document.getElementById('card');
  }

  function notifyParent() {
    var origin = body.getAttribute('data-origin');
    var main = card();
    if (posted || !origin || !main || window.parent === window) return;
    var state = main.getAttribute('data-state');
    if (state !== 'verified' && state !== 'locked' && state !== 'expired' && state !== 'failed') return;
    posted = true;
    window.parent.postMessage(
      { source: 'otpd', status: state, namespace: body.getAttribute('data-namespace'), id: body.getAttribute('data-id') },
      origin
    );
  }

  // Replaces the card with the card of a server answer (same markup as without JavaScript).
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, 'text/html');
    var next = doc.getElementById('card');
    var main = card();
    if (!next || !main) return false;
    main.replaceWith(document.adoptNode(next));
    init();
    return true;
  }

  function request(method, form, submitter) {
    var options = { method: method, headers: { Accept: 'text/html' }, credentials: 'omit', cache: 'no-store' };
    if (form) {
      var data = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        data.append(key, String(value));
      });
      if (submitter && submitter.name) data.set(submitter.name, submitter.value);
      options.body = data;
    }
    return fetch(window.location.href, options).then(function (response) {
      return response.text();
    });
  }

  function setBusy(form, busy) {
    var buttons = form.querySelectorAll('button');
    for (var i = 0; i < buttons.length; i++) {
      if (busy) buttons[i].disabled = true;
    }
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  function startExpiry() {
    var el = document.getElementById('expires');
    if (!el) return;
    var deadline = Date.now() + Number(el.getAttribute('data-expires-in')) * 1000;
    var timer = window.setInterval(function () {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      el.textContent = clock(left);
      if (left <= 0) {
        clearTimers();
        // The server decides what an expired code looks like.
        request('GET').then(swap, function () {
          window.location.reload();
        });
      }
    }, 1000);
    timers.push(timer);
  }

  function startResendCooldown() {
    var button = document.getElementById('resend');
    var wait = document.getElementById('resend-wait');
    if (!button) return;
    var deadline = Date.now() + Number(button.getAttribute('data-resend-in')) * 1000;
    function tick() {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (left > 0) {
        button.disabled = true;
        if (wait) wait.textContent = '(available in ' + left + ' s)';
        return false;
      }
      button.disabled = false;
      if (wait) wait.textContent = '';
      return true;
    }
    if (tick()) return;
    var timer = window.setInterval(function () {
      if (tick()) window.clearInterval(timer);
    }, 1000);
    timers.push(timer);
  }

  function init() {
    clearTimers();
    var form = document.getElementById('otp-form');
    notifyParent();
    if (!form) return;
    startExpiry();
    startResendCooldown();
    var input = document.getElementById('otp');
    var message = document.getElementById('message');
    if (input && message && message.classList.contains('error')) input.setAttribute('aria-invalid', 'true');
    if (input) {
      input.addEventListener('input', function () {
        input.value = input.value.replace(/\D+/g, '');
      });
    }
    form.addEventListener('submit', function (event) {
      var submitter = event.submitter || document.activeElement;
      event.preventDefault();
      setBusy(form, true);
      request('POST', form, submitter).then(
        function (html) {
          if (!swap(html)) window.location.reload();
          var next = document.getElementById('otp');
          if (next) next.focus();
        },
        function () {
          // Network trouble: fall back to the plain form post, keeping which button was pressed.
          if (submitter && submitter.name) {
            var hidden = document.createElement('input');
            hidden.type = 'hidden';
            hidden.name = submitter.name;
            hidden.value = submitter.value;
            form.appendChild(hidden);
          }
          form.submit();
        }
      );
    });
  }

  // Chromium ignores `autofocus` in a frame from another origin (the otp.js dialog), so the server leaves
  // it out there and the field takes the focus here, once the frame has it (otp.js focuses the frame).
  function focusCodeWhenFramed() {
    if (window.parent === window) return;
    var focusCode = function () {
      var input = document.getElementById('otp');
      if (input && document.activeElement !== input) input.focus();
    };
    if (document.hasFocus()) focusCode();
    else window.addEventListener('focus', focusCode, { once: true });
  }

  function start() {
    init();
    focusCodeWhenFramed();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
