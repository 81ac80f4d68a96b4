import type { Logger } from 'pino';
import type { Channel } from '../core/destination.js';
import { isEmptyRule, sendRefusal, type SendRule } from '../core/destination-sends.js';
import { callerBuckets, limitsForCheck, limitsForCreate, retryAfterSeconds, sendRule, type LimitCheck, type RequestContext } from '../core/rate-limits.js';
import type { VerificationRecord } from '../core/verification.js';
import { OtpdError } from '../errors.js';
import type { AppRecord, Store } from '../store/store.js';
import { PumpingGuard, type Refund } from './pumping-guard.js';

/** What a send was admitted with; `refund` gives it back when the send does not happen after all. */
export interface Admission {
  refund: Refund;
}

/**
 * Enforces the rate limits of core/rate-limits.ts and, for sends, the pumping guard, atomically on the
 * active store: every limit is a `slidingHit`, so two otpd instances sharing a store share every count.
 * A request refused by a later limit gives back what the earlier ones counted, so a refusal never eats
 * into a limit (N concurrent creates under a limit of L admit exactly L).
 */
export class RateLimiter {
  readonly pumping: PumpingGuard;

  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {
    this.pumping = new PumpingGuard(store, clock, logger);
  }

  /**
   * Before a first send that is not a verification (seed 001's time-window SMS): the destination's rules
   * (`createRule`), then the caller's limits and the pumping guard (`admitCaller`). Throws VALIDATION for a
   * bad `rateLimits` or a country outside the allow-list, RATE_LIMITED (429 with `limit` and Retry-After)
   * otherwise. `ttlMs`: how long the code about to be sent lives (bounds the destination cooldown it starts).
   */
  async admitCreate(app: AppRecord, channel: Channel, to: string, context: RequestContext, rateLimits?: Record<string, unknown>, ttlMs = Number.POSITIVE_INFINITY): Promise<Admission> {
    this.pumping.assertCountryAllowed(app, channel, to);
    const destination = await this.admitDestination(app, to, this.createRule(app, ttlMs));
    try {
      const caller = await this.admitCaller(app, channel, to, context, rateLimits);
      return { refund: () => this.refundAll([destination, caller.refund]) };
    } catch (error) {
      await this.refundAll([destination]);
      throw error;
    }
  }

  /**
   * The destination's rules of a create's first send: its cooldown (`destinationCooldown`, bounded by the
   * code's `ttlMs`) and `sends-per-destination`. A verification's create hands them to the store with the
   * verification (`Store.createVerification`), which decides them in the same atomic step as the insert.
   */
  createRule(app: AppRecord, ttlMs: number): SendRule {
    return sendRule(app.settings, this.cooldownMs(app, ttlMs));
  }

  /**
   * The rest of a first send's admission: the country allow-list, the caller's limits (per key, per
   * address, the caller's buckets), then the pumping guard. A refusal gives back what was counted before it.
   */
  async admitCaller(app: AppRecord, channel: Channel, to: string, context: RequestContext, rateLimits?: Record<string, unknown>): Promise<Admission> {
    const buckets = callerBuckets(app.settings, rateLimits);
    this.pumping.assertCountryAllowed(app, channel, to);
    const refunds: Refund[] = [];
    try {
      refunds.push(await this.pass(limitsForCreate(app.id, app.settings, context, buckets)));
      refunds.push(await this.pumping.admitSend(app, channel, to));
    } catch (error) {
      await this.refundAll(refunds);
      throw error;
    }
    return { refund: () => this.refundAll(refunds) };
  }

  /**
   * Before a resend: the destination's send limit and the pumping guard (a resend is a message too). The
   * cooldown between sends of one verification is the verification's own (`resendCooldown`).
   */
  async admitResend(app: AppRecord, verification: VerificationRecord): Promise<Admission> {
    const refunds: Refund[] = [];
    try {
      refunds.push(await this.admitDestination(app, verification.to, sendRule(app.settings, 0)));
      refunds.push(await this.pumping.admitSend(app, verification.channel, verification.to));
    } catch (error) {
      await this.refundAll(refunds);
      throw error;
    }
    return { refund: () => this.refundAll(refunds) };
  }

  /** After a resend went out: restarts the destination's cooldown, which new verifications observe. */
  async markSent(app: AppRecord, to: string, ttlMs: number): Promise<void> {
    const cooldownMs = this.cooldownMs(app, ttlMs);
    if (cooldownMs === 0) return;
    await this.store.restartCooldown(app.id, to, cooldownMs, this.clock());
  }

  /**
   * The destination's cooldown after a send whose code lives `ttlMs`: `destinationCooldown`, but never
   * longer than that code lives — once it has expired, asking for a new one is no abuse.
   */
  private cooldownMs(app: AppRecord, ttlMs: number): number {
    return Math.max(0, Math.min(app.settings.destinationCooldown * 1000, ttlMs));
  }

  /**
   * Before a check, whether or not the verification exists, so an unknown id costs the caller as much as a
   * known one. Nothing is refunded: a check is work done even when the code is wrong.
   */
  async admitCheck(app: AppRecord, verificationId: string, context: RequestContext): Promise<void> {
    const checks = limitsForCheck(app.id, app.settings, verificationId, context);
    // Most apps have no check limit that applies (maxAttempts bounds a verification's checks): then
    // nothing is awaited or allocated for them on the check path.
    if (checks.length > 0) await this.pass(checks);
  }

  /** An approved verification counts towards its prefix's conversion (pumping guard). */
  async recordApproval(app: AppRecord, verification: VerificationRecord): Promise<void> {
    try {
      await this.pumping.recordApproval(app, verification.channel, verification.to);
    } catch (error) {
      // The check already succeeded; a missed approval only makes the conversion rule a little stricter.
      this.logger.warn({ err: error, verificationId: verification.id }, 'could not count an approval for the pumping guard');
    }
  }

  /**
   * The destination's rules, decided by the store in one step, so of concurrent creates to one destination
   * exactly one sends within its cooldown, and never more than its window allows. The cooldown's end is
   * judged by this process's clock (`now`), as every limit is.
   */
  private async admitDestination(app: AppRecord, to: string, rule: SendRule): Promise<Refund> {
    if (isEmptyRule(rule)) return async () => undefined;
    const admission = await this.store.admitSend(app.id, to, rule, this.clock());
    if (!admission.allowed) throw sendRefusal(rule, admission);
    return async () => {
      await this.store.refundSend(app.id, to, rule, admission.cooldownUntil, this.clock());
    };
  }

  /** Counts each limit in turn; the first refusal gives back the ones before it and throws. */
  private async pass(checks: LimitCheck[]): Promise<Refund> {
    const passed: LimitCheck[] = [];
    const refund: Refund = async () => {
      const now = this.clock();
      for (const check of passed) {
        await this.store.slidingHit(check.key, check.max, check.windowMs, now, -1).catch((error: unknown) => this.logger.warn({ err: error }, 'rate-limit refund failed'));
      }
    };
    for (const check of checks) {
      const result = await this.store.slidingHit(check.key, check.max, check.windowMs, this.clock());
      if (!result.allowed) {
        await refund();
        const windowSeconds = check.windowMs / 1000;
        throw new OtpdError('RATE_LIMITED', `${describe(check.limit)}: at most ${check.max} per ${windowSeconds} s; retry in ${retryAfterSeconds(result.retryAfterMs)} s`, {
          retryAfter: retryAfterSeconds(result.retryAfterMs),
          extensions: { limit: check.limit, max: check.max, windowSeconds },
        });
      }
      passed.push(check);
    }
    return refund;
  }

  private async refundAll(refunds: Refund[]): Promise<void> {
    for (const refund of refunds.reverse()) await refund().catch((error: unknown) => this.logger.warn({ err: error }, 'rate-limit refund failed'));
  }
}

function describe(limit: string): string {
  switch (limit) {
    case 'verifications-per-key':
      return 'too many verifications created with this API key';
    case 'verifications-per-ip':
      return 'too many verifications requested from this address';
    case 'checks-per-key':
      return 'too many checks with this API key';
    case 'checks-per-ip':
      return 'too many checks from this address';
    case 'checks-per-verification':
      return 'too many checks of this verification';
    default:
      return limit.startsWith('bucket:') ? `rate limit ${limit.slice('bucket:'.length)} reached` : 'rate limit reached';
  }
}
