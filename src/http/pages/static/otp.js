// otpd's embed script for the hosted verification page (docs/hosted-page.md), compatible with
// otpgateway's: include it as
//   <script id="otpgateway-script" src="https://OTPD/static/otp.js"></script>
// and call OTPGateway(namespace, id, onVerified, onCancel) after your server created the OTP
// (PUT /api/otp/:id). The page opens in an iframe dialog; when the person has verified, onVerified(namespace, id)
// runs and the dialog closes. Confirm on your server with POST /api/otp/:id/status before trusting it.
// The page only reports to origins listed in the app's allowedOrigins setting, and only messages from
// otpd's own origin and from the dialog's own frame are believed here.
(function () {
  'use strict';
  if (Object.prototype.hasOwnProperty.call(window, 'OTPGateway')) return;

  var script = document.getElementById('otpgateway-script') || document.currentScript;
  if (!script || !script.src) throw new Error('otpd: give the otp.js <script> the id "otpgateway-script"');
  var scriptUrl = new URL(script.src, document.baseURI);
  // Everything before /static/otp.js, so otpd behind a path prefix works too.
  var base = scriptUrl.href.slice(0, scriptUrl.href.length - scriptUrl.pathname.length) + scriptUrl.pathname.replace(/\/static\/otp\.js$/, '');
  var otpdOrigin = scriptUrl.origin;

  var css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = base + '/static/otp.css';
  document.head.appendChild(css);

  var current = null;

  function close(verified) {
    if (!current) return;
    var open = current;
    current = null;
    window.removeEventListener('message', open.onMessage);
    document.removeEventListener('keydown', open.onKey);
    open.wrap.remove();
    if (open.previousFocus && open.previousFocus.focus) open.previousFocus.focus();
    if (!verified && typeof open.onCancel === 'function') open.onCancel(open.namespace, open.id);
  }

  window.OTPGateway = function (namespace, id, onVerified, onCancel) {
    close(false);
    var wrap = document.createElement('div');
    wrap.id = 'otpgateway-modal-wrap';
    var backdrop = document.createElement('div');
    backdrop.id = 'otpgateway-modal';
    var dialog = document.createElement('div');
    dialog.id = 'otpgateway-dialog';
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.setAttribute('aria-label', 'Verification');
    var closeButton = document.createElement('button');
    closeButton.id = 'otpgateway-close';
    closeButton.type = 'button';
    closeButton.setAttribute('aria-label', 'Close');
    closeButton.textContent = '\u00d7';
    var frame = document.createElement('iframe');
    frame.id = 'otpgateway-frame';
    frame.title = 'Verification';
    frame.src =
      base + '/otp/' + encodeURIComponent(namespace) + '/' + encodeURIComponent(id) +
      '?view=popup&origin=' + encodeURIComponent(window.location.origin);
    dialog.appendChild(closeButton);
    dialog.appendChild(frame);
    wrap.appendChild(backdrop);
    wrap.appendChild(dialog);

    var state = {
      wrap: wrap,
      namespace: namespace,
      id: id,
      onCancel: onCancel,
      previousFocus: document.activeElement,
      onMessage: function (event) {
        if (event.origin !== otpdOrigin || event.source !== frame.contentWindow) return;
        var data = event.data;
        if (!data || data.source !== 'otpd' || data.namespace !== String(namespace) || data.id !== String(id)) return;
        if (data.status !== 'verified') return;
        window.removeEventListener('message', state.onMessage);
        if (typeof onVerified === 'function') onVerified(namespace, id);
        // Leave the tick in view for a moment before the dialog goes.
        window.setTimeout(function () {
          if (current === state) close(true);
        }, 800);
      },
      onKey: function (event) {
        if (event.key === 'Escape') close(false);
      },
    };
    current = state;
    backdrop.addEventListener('click', function () {
      close(false);
    });
    closeButton.addEventListener('click', function () {
      close(false);
    });
    window.addEventListener('message', state.onMessage);
    document.addEventListener('keydown', state.onKey);
    // The focus goes into the dialog, and again whenever the frame loads a page (a form posted without
    // script), so the page inside can put it on the code field.
    frame.addEventListener('load', function () {
      if (current === state && frame.contentWindow) frame.contentWindow.focus();
    });
    document.body.appendChild(wrap);
    frame.focus();
  };
})();
