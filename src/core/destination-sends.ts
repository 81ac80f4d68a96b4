import { OtpdError } from '../errors.js';
import { retryAfterSeconds } from './rate-limits.js';
import { decideSliding, type SlidingState } from './sliding-window.js';

/**
 * The two rules every send to one destination passes, decided together: the destination cooldown (no new
 * verification within `destinationCooldown` of the last send) and `sends-per-destination` (a sliding window,
 * core/sliding-window.ts). Pure: each store keeps one destination's state in one place — a row on SQLite,
 * a hash on Redis (DESTINATION_SEND, which repeats these rules line for line) — and applies them in one
 * atomic step, so of concurrent sends exactly as many pass as the rules allow. One place per destination,
 * rather than a cooldown record and a counter apart, is one store call per send and, on SQLite, one page
 * written per destination instead of two: with real traffic's scattered numbers each is a random page.
 */

/** What one send to a destination must pass. */
export interface SendRule {
  /**
   * How long a create's send keeps other creates from sending to the destination. 0: the cooldown is
   * neither checked nor started (a resend, which has its own `resendCooldown`, or the cooldown switched off).
   */
  cooldownMs: number;
  /** `sends-per-destination`; null when it is switched off. */
  window: { max: number; windowMs: number } | null;
}

/** One destination's state as a store keeps it. */
export interface DestinationState {
  /** Epoch ms until which a create may not send; 0 for none. */
  cooldownUntil: number;
  /** The sliding window of sends; all zero when nothing was counted. */
  sends: SlidingState;
}

export const NO_DESTINATION_STATE: DestinationState = Object.freeze({ cooldownUntil: 0, sends: Object.freeze({ windowStart: 0, current: 0, previous: 0 }) });

/**
 * The 429's `limit` of each rule: `destination-cooldown` for a create within `destinationCooldown` of the
 * last send to the destination; `sends-per-destination` is the limit of that name in core/rate-limits.ts.
 */
export type DestinationLimit = 'destination-cooldown' | 'sends-per-destination';

export type SendAdmission =
  /** `cooldownUntil`: the cooldown this send started (0 for none), which a refund releases. */
  | { allowed: true; cooldownUntil: number }
  | { allowed: false; limit: DestinationLimit; retryAfterMs: number };

export interface SendDecision {
  admission: SendAdmission;
  /** What to store: unchanged when refused. */
  state: DestinationState;
}

/** True when a rule has nothing to check, so no store needs to be asked. */
export function isEmptyRule(rule: SendRule): boolean {
  return rule.cooldownMs <= 0 && rule.window === null;
}

/**
 * The cooldown first (a create inside it is refused and counts nothing), then the window; an admitted send
 * is counted and, with `cooldownMs`, starts the cooldown. A cooldown past its end counts as none, so a state
 * a store has not purged yet behaves as an empty one.
 */
export function decideSend(stored: DestinationState, rule: SendRule, now: number): SendDecision {
  if (rule.cooldownMs > 0 && stored.cooldownUntil > now) {
    return { admission: { allowed: false, limit: 'destination-cooldown', retryAfterMs: stored.cooldownUntil - now }, state: stored };
  }
  let sends = stored.sends;
  if (rule.window) {
    const decision = decideSliding(sends, rule.window.max, rule.window.windowMs, now, 1);
    if (!decision.allowed) return { admission: { allowed: false, limit: 'sends-per-destination', retryAfterMs: decision.retryAfterMs }, state: stored };
    sends = decision.state;
  }
  if (rule.cooldownMs <= 0) return { admission: { allowed: true, cooldownUntil: 0 }, state: { cooldownUntil: stored.cooldownUntil, sends } };
  const cooldownUntil = now + rule.cooldownMs;
  return { admission: { allowed: true, cooldownUntil }, state: { cooldownUntil, sends } };
}

/**
 * The 429 of a refused send, wherever it was decided (Store `admitSend`, or `createVerification` with a
 * rule), so it reads the same either way: which rule, its bound, and when to retry.
 */
export function sendRefusal(rule: SendRule, refused: Extract<SendAdmission, { allowed: false }>): OtpdError {
  const retryAfter = retryAfterSeconds(refused.retryAfterMs);
  if (refused.limit === 'destination-cooldown') {
    const seconds = Math.ceil(rule.cooldownMs / 1000);
    return new OtpdError('RATE_LIMITED', `a code was sent to this destination less than ${seconds} s ago; retry in ${retryAfter} s`, {
      retryAfter,
      extensions: { limit: refused.limit, windowSeconds: seconds },
    });
  }
  const max = rule.window?.max ?? 0;
  const windowSeconds = (rule.window?.windowMs ?? 0) / 1000;
  return new OtpdError('RATE_LIMITED', `too many codes sent to this destination: at most ${max} per ${windowSeconds} s; retry in ${retryAfter} s`, {
    retryAfter,
    extensions: { limit: refused.limit, max, windowSeconds },
  });
}

/**
 * The answer for a decision a backend made on its own (Redis returns the state it decided on and whether it
 * admitted): the same admission `decideSend` gives for that state. Should the two ever disagree, the
 * backend's verdict stands, since it is what was stored.
 */
export function sendAdmissionFrom(admitted: boolean, before: DestinationState, rule: SendRule, now: number): SendAdmission {
  const { admission } = decideSend(before, rule, now);
  if (admission.allowed === admitted) return admission;
  if (admitted) return { allowed: true, cooldownUntil: rule.cooldownMs > 0 ? now + rule.cooldownMs : 0 };
  return { allowed: false, limit: 'sends-per-destination', retryAfterMs: 1000 };
}

/**
 * Gives back an admitted send that did not happen: one send off the window (never below zero), and the
 * cooldown it started (`claimedUntil`) unless a later send has restarted it since.
 */
export function refundSend(stored: DestinationState, rule: SendRule, claimedUntil: number, now: number): DestinationState {
  const cooldownUntil = claimedUntil > 0 && stored.cooldownUntil === claimedUntil ? 0 : stored.cooldownUntil;
  const sends = rule.window ? decideSliding(stored.sends, rule.window.max, rule.window.windowMs, now, -1).state : stored.sends;
  return { cooldownUntil, sends };
}

/** After a resend went out: the cooldown runs until at least `now + cooldownMs` (never shortened). */
export function restartCooldown(stored: DestinationState, cooldownMs: number, now: number): DestinationState {
  return { cooldownUntil: Math.max(stored.cooldownUntil, now + cooldownMs), sends: stored.sends };
}

/**
 * When the state stops mattering under `rule`: the cooldown is over and the window's counts have rolled
 * out (two windows after its start). A store keeps the later of this and what it kept before, so a write
 * under a rule without a window (a resend's restart) never drops counts that another rule still needs.
 */
export function destinationExpiresAt(state: DestinationState, rule: SendRule): number {
  return Math.max(state.cooldownUntil, rule.window ? state.sends.windowStart + 2 * rule.window.windowMs : 0);
}
