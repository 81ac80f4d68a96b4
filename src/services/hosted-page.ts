import { constantTimeEqual } from '../core/codes.js';
import { maskDestination, type Channel } from '../core/destination.js';
import type { Keyring } from '../core/keyring.js';
import { isExpired, type VerificationRecord } from '../core/verification.js';
import { isOtpdError } from '../errors.js';
import type { RequestContext } from '../core/rate-limits.js';
import type { AppRecord } from '../store/store.js';
import type { AppsService } from './apps.js';
import { isLocked, type NamedVerification, type NamedVerificationsService } from './named-verifications.js';

/**
 * The hosted verification page (`/otp/:namespace/:id`, docs/hosted-page.md): what a person sees and may do
 * without an API key. It reaches verifications only through the named-verification and verification
 * services, so it has exactly the API's attempt limits, expiry and resend rules.
 *
 * Keyless, so no enumeration (decisions 13): an unknown app, an unknown id and an expired verification
 * all give the same `expired` view.
 */
export type PageState = 'open' | 'verified' | 'locked' | 'expired' | 'failed';

export interface PageView {
  state: PageState;
  /** Origins allowed to embed the page and receive its result (the app's `allowedOrigins`, decisions 19). */
  allowedOrigins: string[];
  channel: Channel | null;
  /** Where the code went, masked (`+1******6640`). */
  maskedTo: string | null;
  /** The client's `channel_description`, shown as given (escaped by the renderer). */
  channelDescription: string;
  codeLength: number;
  /** Seconds until the code expires. */
  expiresIn: number;
  attemptsLeft: number;
  /** Seconds until a resend is allowed; null when no more sends are allowed. */
  resendIn: number | null;
  /** The CSRF token for this verification's form; null when there is nothing to submit. */
  csrf: string | null;
}

export type CheckResult = 'verified' | 'wrong' | 'closed' | 'bad_csrf' | 'bad_code';
export type ResendResult = 'resent' | 'cooldown' | 'max_sends' | 'closed' | 'bad_csrf';

export interface PageOutcome<R> {
  view: PageView;
  result: R;
  /** Seconds to wait, for `cooldown`. */
  retryAfter?: number;
}

const CODE = /^\d{4,10}$/;

function closedView(allowedOrigins: string[]): PageView {
  return { state: 'expired', allowedOrigins, channel: null, maskedTo: null, channelDescription: '', codeLength: 6, expiresIn: 0, attemptsLeft: 0, resendIn: null, csrf: null };
}

export class HostedPageService {
  constructor(
    private readonly apps: AppsService,
    private readonly named: NamedVerificationsService,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
  ) {}

  /**
   * The CSRF token of a verification's form: `kid.HMAC(page-csrf key, app id + verification id)`. It travels
   * in a hidden form field because cookies do not reach a cross-site iframe (decisions 19); binding it to
   * the verification means a page left open over a newer verification of the same id cannot submit to it.
   */
  csrfToken(appId: string, verificationId: string): string {
    const kid = this.keyring.currentKid;
    return `${kid}.${this.keyring.mac('page-csrf', `${appId}\n${verificationId}`, kid)}`;
  }

  private csrfValid(appId: string, verificationId: string, token: string | undefined): boolean {
    if (!token) return false;
    const dot = token.indexOf('.');
    const kid = token.slice(0, dot);
    if (dot <= 0 || !this.keyring.hasKid(kid)) return false;
    return constantTimeEqual(token.slice(dot + 1), this.keyring.mac('page-csrf', `${appId}\n${verificationId}`, kid));
  }

  private async lookup(namespace: string, clientId: string): Promise<{ app?: AppRecord; named?: NamedVerification }> {
    const app = await this.apps.get(namespace).catch((error: unknown) => {
      if (isOtpdError(error, 'NOT_FOUND')) return undefined;
      throw error;
    });
    if (!app) return {};
    const named = await this.named.find(app, clientId);
    return named ? { app, named } : { app };
  }

  private viewOf(app: AppRecord | undefined, named: NamedVerification | undefined): PageView {
    const allowedOrigins = app ? app.settings.allowedOrigins : [];
    if (!app || !named) return closedView(allowedOrigins);
    const v: VerificationRecord = named.verification;
    const now = this.clock();
    let state: PageState;
    if (v.status === 'approved') state = 'verified';
    else if (v.status === 'failed') state = 'failed';
    else if (isLocked(v) && !isExpired(v, now)) state = 'locked';
    else if (v.status !== 'pending' || isExpired(v, now)) return closedView(allowedOrigins);
    else state = 'open';
    const open = state === 'open';
    const cooldownMs = app.settings.resendCooldown * 1000;
    return {
      state,
      allowedOrigins,
      channel: v.channel,
      maskedTo: maskDestination(v.to),
      channelDescription: named.binding.channelDescription,
      codeLength: v.codeLength,
      expiresIn: open ? Math.max(0, Math.ceil((v.expiresAt - now) / 1000)) : 0,
      attemptsLeft: Math.max(0, v.maxAttempts - v.attempts),
      resendIn: open && v.sends < app.settings.maxSends ? Math.max(0, Math.ceil((v.lastSentAt + cooldownMs - now) / 1000)) : null,
      csrf: open ? this.csrfToken(app.id, v.id) : null,
    };
  }

  async view(namespace: string, clientId: string): Promise<PageView> {
    const { app, named } = await this.lookup(namespace, clientId);
    return this.viewOf(app, named);
  }

  /** Checks a code typed on the page. A malformed code costs no attempt; everything else is one check. */
  async check(namespace: string, clientId: string, csrf: string | undefined, code: string | undefined, context: RequestContext): Promise<PageOutcome<CheckResult>> {
    const { app, named } = await this.lookup(namespace, clientId);
    const before = this.viewOf(app, named);
    if (before.state !== 'open' || !app || !named) return { view: before, result: 'closed' };
    if (!this.csrfValid(app.id, named.verification.id, csrf)) return { view: before, result: 'bad_csrf' };
    const trimmed = (code ?? '').replace(/\s+/g, '');
    if (!CODE.test(trimmed) || trimmed.length !== named.verification.codeLength) return { view: before, result: 'bad_code' };
    // The page keeps a verified id, so the site's `POST /api/otp/:id/status` can confirm it afterwards.
    const checked = await this.named.check(app, clientId, trimmed, { keep: true }, context).catch((error: unknown) => {
      if (isOtpdError(error, 'NOT_FOUND')) return undefined;
      throw error;
    });
    if (!checked) return { view: closedView(app.settings.allowedOrigins), result: 'closed' };
    const view = this.viewOf(app, checked);
    const result: CheckResult = checked.outcome === 'approved' ? 'verified' : checked.outcome === 'wrong' ? 'wrong' : 'closed';
    return { view, result };
  }

  async resend(namespace: string, clientId: string, csrf: string | undefined, context: RequestContext): Promise<PageOutcome<ResendResult>> {
    const { app, named } = await this.lookup(namespace, clientId);
    const before = this.viewOf(app, named);
    if (before.state !== 'open' || !app || !named) return { view: before, result: 'closed' };
    if (!this.csrfValid(app.id, named.verification.id, csrf)) return { view: before, result: 'bad_csrf' };
    try {
      const resent = await this.named.resend(app, clientId, context);
      return { view: this.viewOf(app, resent), result: 'resent' };
    } catch (error) {
      if (isOtpdError(error, 'RESEND_COOLDOWN')) return { view: before, result: 'cooldown', retryAfter: error.retryAfter ?? before.resendIn ?? 1 };
      if (isOtpdError(error, 'MAX_SENDS')) return { view: { ...before, resendIn: null }, result: 'max_sends' };
      if (isOtpdError(error, 'NOT_FOUND') || isOtpdError(error, 'NOT_PENDING')) return { view: this.viewOf(app, await this.named.find(app, clientId)), result: 'closed' };
      throw error;
    }
  }
}
