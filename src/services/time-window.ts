import { constantTimeEqual } from '../core/codes.js';
import { isE164 } from '../core/destination.js';
import { newId } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import type { RequestContext } from '../core/rate-limits.js';
import { codeFromMac, TIME_WINDOW_MAX_LEAD_MS, timeWindowMessage, windowEndMs, windowState, type TimeWindow } from '../core/time-window.js';
import { isOtpdError } from '../errors.js';
import type { AppRecord, Store } from '../store/store.js';
import type { Admission } from './rate-limiter.js';
import type { VerificationsService } from './verifications.js';
import { countInWindow } from './window-counter.js';

/** A window as a request gives it; the service adds the app. */
export type WindowRequest = Omit<TimeWindow, 'appId'>;

/** Why a request was refused; each dialect maps these to its own error codes. */
export type TimeWindowRefusal =
  | { reason: 'duration_too_long'; max: number }
  | { reason: 'starts_too_late'; maxLeadSeconds: number }
  | { reason: 'not_started' }
  | { reason: 'ended'; endMs: number }
  | { reason: 'sms_disabled' }
  | { reason: 'sms_limited'; detail: string; retryAfterMs: number }
  | { reason: 'sms_refused'; detail: string }
  | { reason: 'wrong' }
  | { reason: 'used' }
  | { reason: 'locked'; retryAfterMs: number };

export type GenerateOutcome = { ok: true; code: string; endMs: number; smsTo?: string } | ({ ok: false } & TimeWindowRefusal);
export type ValidateOutcome = { ok: true } | ({ ok: false } & TimeWindowRefusal);

const GUESSES = 'tw-guesses';
/** Replay guards outlive the window by this much, so clock differences between instances cannot reopen it. */
const GUARD_MARGIN_MS = 60_000;

/**
 * Seed 001's time-window codes (src/core/time-window.ts): derived, never stored. The only state is guard
 * state: a validated code is claimed once, and every guess at a (mobile, startTime) costs one of the app's
 * `maxAttempts` before the code is compared, so concurrent guesses can never exceed the limit (standards T1, T2).
 */
export class TimeWindowService {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly verifications: VerificationsService,
    private readonly clock: () => number,
  ) {}

  private codeFor(window: TimeWindow, kid = this.keyring.currentKid): string {
    return codeFromMac(this.keyring.macBytes('time-window', timeWindowMessage(window), kid), window.digit);
  }

  private checkDuration(app: AppRecord, request: WindowRequest): TimeWindowRefusal | undefined {
    const max = app.settings.timeWindowMaxDuration;
    return request.duration > max ? { reason: 'duration_too_long', max } : undefined;
  }

  /**
   * The code of a window that is open or opens within five minutes. With the app's `timeWindowSms` on, it
   * is also sent by SMS to `defaultCountryCode` + mobile, admitted like any first send.
   */
  async generate(app: AppRecord, request: WindowRequest, context: RequestContext): Promise<GenerateOutcome> {
    const refused = this.checkDuration(app, request);
    if (refused) return { ok: false, ...refused };
    const now = this.clock();
    if (request.startMs - now > TIME_WINDOW_MAX_LEAD_MS) return { ok: false, reason: 'starts_too_late', maxLeadSeconds: TIME_WINDOW_MAX_LEAD_MS / 1000 };
    const endMs = windowEndMs(request);
    if (windowState(request, now) === 'ended') return { ok: false, reason: 'ended', endMs };
    const window: TimeWindow = { ...request, appId: app.id };
    const code = this.codeFor(window);
    if (!app.settings.timeWindowSms) return { ok: true, code, endMs };

    const to = app.settings.defaultCountryCode + request.mobile;
    if (!app.settings.channels.includes('sms') || !isE164(to)) return { ok: false, reason: 'sms_disabled' };
    // The same admission as a verification's first send: destination cooldown and limits, country
    // allow-list, pumping guard and spend cap (standards O5). The endpoint is keyless; it must not pump SMS.
    let admission: Admission;
    try {
      admission = await this.verifications.rateLimiter.admitCreate(app, 'sms', to, context);
    } catch (error) {
      if (isOtpdError(error, 'RATE_LIMITED')) return { ok: false, reason: 'sms_limited', detail: error.message, retryAfterMs: (error.retryAfter ?? 1) * 1000 };
      if (isOtpdError(error, 'VALIDATION')) return { ok: false, reason: 'sms_refused', detail: error.message.replace(/^to: /, '') };
      throw error;
    }
    try {
      await this.verifications.sendCode(app, { reference: newId('tw', now), to, channel: 'sms', code, expiresAt: endMs });
    } catch (error) {
      await admission.refund();
      throw error;
    }
    return { ok: true, code, endMs, smsTo: to };
  }

  /**
   * Checks a code. Window state first (an ended window is refused without costing an attempt), then one
   * attempt is reserved, then the code is compared in constant time under every keyring key (a rotation
   * mid-window keeps codes valid), and a right code is claimed once.
   */
  async validate(app: AppRecord, request: WindowRequest, presented: string): Promise<ValidateOutcome> {
    const refused = this.checkDuration(app, request);
    if (refused) return { ok: false, ...refused };
    const now = this.clock();
    const state = windowState(request, now);
    const endMs = windowEndMs(request);
    if (state === 'not_started') return { ok: false, reason: 'not_started' };
    if (state === 'ended') return { ok: false, reason: 'ended', endMs };

    // One counter per (mobile, startTime) across channels, durations and digit counts, kept until the
    // longest window the app allows from that start has ended.
    const guardUntil = request.startMs + app.settings.timeWindowMaxDuration * 1000 + GUARD_MARGIN_MS;
    const attempt = await countInWindow(this.store, GUESSES, `${app.id}:${request.mobile}:${request.startMs}`, app.settings.maxAttempts, { until: guardUntil }, now);
    if (!attempt.allowed) return { ok: false, reason: 'locked', retryAfterMs: Math.max(0, endMs - now) };

    const window: TimeWindow = { ...request, appId: app.id };
    let matches = false;
    for (const kid of this.keyring.kids) matches = constantTimeEqual(this.codeFor(window, kid), presented) || matches;
    if (!matches) return { ok: false, reason: 'wrong' };

    const claimKey = `tw-used:${app.id}:${request.mobile}:${request.channel}:${request.startMs}:${request.duration}:${request.digit}`;
    if (!(await this.store.claimOnce(claimKey, endMs - now + GUARD_MARGIN_MS, now))) return { ok: false, reason: 'used' };
    return { ok: true };
  }
}
