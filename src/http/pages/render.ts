import type { Channel } from '../../core/destination.js';
import type { CheckResult, PageView, ResendResult } from '../../services/hosted-page.js';

/**
 * HTML of the hosted verification page. Everything variable is escaped; there is no inline script or
 * style (the page's CSP allows neither), and the code itself never appears in the page.
 */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export type PageResult = CheckResult | ResendResult;

export interface PageContext {
  namespace: string;
  id: string;
  view: PageView;
  result?: PageResult;
  retryAfter?: number;
  /** An allowed origin of the embedding site: the page posts its result there (never to `*`). */
  parentOrigin?: string;
}

const CHANNEL_WORDS: Record<Channel, { by: string; noun: string }> = {
  sms: { by: 'by SMS', noun: 'phone number' },
  voice: { by: 'by voice call', noun: 'phone number' },
  whatsapp: { by: 'on WhatsApp', noun: 'phone number' },
  email: { by: 'by email', noun: 'email address' },
};

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `4:59`: what the countdown shows before the script takes over. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The message a result leaves on the page, and whether it is an error. */
export function resultMessage(ctx: PageContext): { text: string; kind: 'error' | 'info' } | undefined {
  const { view } = ctx;
  switch (ctx.result) {
    case 'wrong':
      return view.state === 'open'
        ? { text: `That code is not right. ${plural(view.attemptsLeft, 'attempt', 'attempts')} left.`, kind: 'error' }
        : undefined;
    case 'bad_code':
      return { text: `Enter the ${view.codeLength}-digit code from the message.`, kind: 'error' };
    case 'bad_csrf':
      return { text: 'This page is out of date. Reload it and try again.', kind: 'error' };
    case 'resent':
      return { text: `A new code is on its way. It replaces the previous one.`, kind: 'info' };
    case 'cooldown':
      return { text: `Please wait ${plural(ctx.retryAfter ?? 1, 'second', 'seconds')} before asking for another code.`, kind: 'error' };
    case 'max_sends':
      return { text: 'No more codes can be sent for this verification.', kind: 'error' };
    default:
      return undefined;
  }
}

function openBody(ctx: PageContext): string {
  const { view } = ctx;
  const words = CHANNEL_WORDS[view.channel ?? 'sms'];
  const message = resultMessage(ctx);
  const description = view.channelDescription ? `<p class="description">${escapeHtml(view.channelDescription)}</p>` : '';
  const resend =
    view.resendIn === null
      ? '<p class="resend muted">No more codes can be sent for this verification.</p>'
      : `<p class="resend">Didn’t get it? <button type="submit" name="action" value="resend" formnovalidate class="link" id="resend" data-resend-in="${view.resendIn}">Send a new code</button> <span id="resend-wait" class="muted" aria-live="polite">${view.resendIn > 0 ? `(available in ${view.resendIn} s)` : ''}</span></p>`;
  return `
    <h1>Enter your code</h1>
    <p class="lead">We sent a ${view.codeLength}-digit code ${words.by} to <strong class="destination">${escapeHtml(view.maskedTo ?? '')}</strong>.</p>
    ${description}
    <form method="post" id="otp-form" autocomplete="off">
      <input type="hidden" name="csrf" value="${escapeHtml(view.csrf ?? '')}">
      <label for="otp">Verification code</label>
      <input id="otp" name="otp" type="text" inputmode="numeric" pattern="[0-9]*" autocomplete="one-time-code" minlength="${view.codeLength}" maxlength="${view.codeLength}" required${ctx.parentOrigin ? '' : ' autofocus'} spellcheck="false" aria-describedby="message meta">
      <p id="message" class="message${message ? ` ${message.kind}` : ''}" role="${message?.kind === 'error' ? 'alert' : 'status'}" aria-live="polite">${message ? escapeHtml(message.text) : ''}</p>
      <button type="submit" name="action" value="check" class="primary" id="verify">Verify</button>
      <p id="meta" class="meta muted">Code expires in <time id="expires" data-expires-in="${view.expiresIn}">${clock(view.expiresIn)}</time> · ${plural(view.attemptsLeft, 'attempt', 'attempts')} left</p>
      ${resend}
    </form>`;
}

function terminalBody(ctx: PageContext): string {
  const { view } = ctx;
  const noun = CHANNEL_WORDS[view.channel ?? 'sms'].noun;
  switch (view.state) {
    case 'verified':
      return `
    <div class="result success" role="status"><span class="icon" aria-hidden="true">✓</span>
      <h1>Verified</h1>
      <p>Your ${noun} is verified. You can close this page.</p>
    </div>`;
    case 'locked':
      return `
    <div class="result failure" role="alert"><span class="icon" aria-hidden="true">!</span>
      <h1>Too many attempts</h1>
      <p>${ctx.result === 'wrong' ? 'That code is not right, and no attempts are left. ' : ''}This code can no longer be used. Go back to the site that sent you here and start again later.</p>
    </div>`;
    case 'failed':
      return `
    <div class="result failure" role="alert"><span class="icon" aria-hidden="true">!</span>
      <h1>The code could not be sent</h1>
      <p>Go back to the site that sent you here and try again, or use another ${noun}.</p>
    </div>`;
    default:
      // Unknown ids render exactly this too (decisions 13: no enumeration on the keyless page).
      return `
    <div class="result failure" role="alert"><span class="icon" aria-hidden="true">⌛</span>
      <h1>This code has expired</h1>
      <p>Go back to the site that sent you here and ask for a new code.</p>
    </div>`;
  }
}

export function renderPage(ctx: PageContext): string {
  const { view } = ctx;
  const title = view.state === 'open' ? 'Enter your code' : view.state === 'verified' ? 'Verified' : view.state === 'locked' ? 'Too many attempts' : view.state === 'failed' ? 'Code not sent' : 'Code expired';
  const origin = ctx.parentOrigin ? ` data-origin="${escapeHtml(ctx.parentOrigin)}"` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="../../static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="../../static/page.css">
<script src="../../static/page.js" defer></script>
</head>
<body data-namespace="${escapeHtml(ctx.namespace)}" data-id="${escapeHtml(ctx.id)}"${origin}>
<main class="card" id="card" data-state="${view.state}">${view.state === 'open' ? openBody(ctx) : terminalBody(ctx)}
</main>
</body>
</html>
`;
}
