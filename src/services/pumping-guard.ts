import type { Logger } from 'pino';
import type { Channel } from '../core/destination.js';
import {
  conversionPrefix,
  convertsTooPoorly,
  countryAllowed,
  DAY_MS,
  isPhoneChannel,
  prefixLimitFor,
  priceMicros,
  toMicros,
} from '../core/pumping.js';
import { retryAfterSeconds } from '../core/rate-limits.js';
import { OtpdError } from '../errors.js';
import type { AppRecord, Store } from '../store/store.js';

/** Something counted for a send that is undone if the send does not happen after all. */
export type Refund = () => Promise<void>;

const BLOCKS = 'pumping-block';
/** Counters that only count (the rule reads them): a limit no real count reaches. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

interface Block {
  until: number;
  sends: number;
  approvals: number;
}

/**
 * The SMS-pumping guard (core/pumping.ts has the rules): every send on a phone channel passes it before the
 * verification is stored or any provider is called. Counters are the store's atomic primitives, so every
 * otpd instance on one store enforces the same limits.
 */
export class PumpingGuard {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {}

  /** Refuses a number outside the app's country allow-list (a 400 naming `to`; nothing is counted). */
  assertCountryAllowed(app: AppRecord, channel: Channel, to: string): void {
    // No allow-list allows every country: no need to look the number's country up (libphonenumber is costly).
    if (!isPhoneChannel(channel) || (app.settings.allowedCountries ?? []).length === 0) return;
    const { allowed, country } = countryAllowed(app.settings.allowedCountries, to);
    if (allowed) return;
    const message = country === undefined
      ? `this number belongs to no known country, and this app sends only to ${app.settings.allowedCountries.join(', ')}`
      : `this app does not send to ${country} numbers (allowed: ${app.settings.allowedCountries.join(', ')})`;
    throw new OtpdError('VALIDATION', `to: ${message}`, { errors: [{ field: 'to', message }], extensions: { limit: 'country-not-allowed' } });
  }

  /**
   * Admits one send or throws RATE_LIMITED naming the rule (`prefix-blocked`, `sends-per-prefix`,
   * `daily-spend-cap`). Returns the refund of what it counted, for when the send does not happen.
   */
  async admitSend(app: AppRecord, channel: Channel, to: string): Promise<Refund> {
    this.assertCountryAllowed(app, channel, to);
    const refunds: Refund[] = [];
    const refundAll: Refund = async () => {
      for (const refund of refunds.reverse()) await refund().catch((error: unknown) => this.logger.warn({ err: error }, 'rate-limit refund failed'));
    };
    try {
      if (isPhoneChannel(channel)) {
        await this.checkConversion(app, to, refunds);
        await this.checkPrefixVelocity(app, to, refunds);
      }
      await this.checkSpend(app, channel, to, refunds);
    } catch (error) {
      await refundAll();
      throw error;
    }
    return refundAll;
  }

  /** Counts an approved verification for its prefix: the other half of the conversion rule. */
  async recordApproval(app: AppRecord, channel: Channel, to: string): Promise<void> {
    const guard = app.settings.conversionGuard;
    if (!guard || !isPhoneChannel(channel)) return;
    const prefix = conversionPrefix(to, guard);
    await this.store.slidingHit(this.approvalsKey(app, prefix), UNBOUNDED, guard.windowSeconds * 1000, this.clock());
  }

  private sendsKey(app: AppRecord, prefix: string): string {
    return `pump:${app.id}:sent:${prefix}`;
  }

  private approvalsKey(app: AppRecord, prefix: string): string {
    return `pump:${app.id}:approved:${prefix}`;
  }

  /**
   * The low-conversion rule: a prefix already blocked is refused until its block ends; otherwise, when the
   * last window's sends are enough to judge and too few were approved, the prefix is blocked now.
   */
  private async checkConversion(app: AppRecord, to: string, refunds: Refund[]): Promise<void> {
    const guard = app.settings.conversionGuard;
    if (!guard) return;
    const prefix = conversionPrefix(to, guard);
    const blockId = `${app.id}:${prefix}`;
    const now = this.clock();
    const blocked = await this.store.getRecord<Block>(BLOCKS, blockId, now);
    if (blocked && blocked.value.until > now) throw this.prefixBlocked(prefix, blocked.value.until - now);
    const windowMs = guard.windowSeconds * 1000;
    const [sends, approvals] = await Promise.all([
      this.store.slidingHit(this.sendsKey(app, prefix), UNBOUNDED, windowMs, now, 0),
      this.store.slidingHit(this.approvalsKey(app, prefix), UNBOUNDED, windowMs, now, 0),
    ]);
    if (convertsTooPoorly(sends.count, approvals.count, guard)) {
      const until = now + guard.blockSeconds * 1000;
      // Create-if-absent: of concurrent senders, one blocks and logs; the block's ttl ends it.
      const created = await this.store.putRecord<Block>(BLOCKS, blockId, { until, sends: Math.round(sends.count), approvals: Math.round(approvals.count) }, { ifVersion: null, ttlMs: guard.blockSeconds * 1000 }, now);
      if (created !== undefined) {
        this.logger.warn({ appId: app.id, prefix, sends: Math.round(sends.count), approvals: Math.round(approvals.count), blockSeconds: guard.blockSeconds }, 'prefix blocked: its codes are sent but almost never entered (SMS pumping?)');
      }
      throw this.prefixBlocked(prefix, guard.blockSeconds * 1000);
    }
    await this.store.slidingHit(this.sendsKey(app, prefix), UNBOUNDED, windowMs, now, 1);
    refunds.push(async () => {
      await this.store.slidingHit(this.sendsKey(app, prefix), UNBOUNDED, windowMs, this.clock(), -1);
    });
  }

  private prefixBlocked(prefix: string, retryMs: number): OtpdError {
    return new OtpdError('RATE_LIMITED', `sends to numbers starting ${prefix} are paused: their codes are almost never entered (SMS pumping protection); retry in ${retryAfterSeconds(retryMs)} s`, {
      retryAfter: retryAfterSeconds(retryMs),
      extensions: { limit: 'prefix-blocked' },
    });
  }

  private async checkPrefixVelocity(app: AppRecord, to: string, refunds: Refund[]): Promise<void> {
    const match = prefixLimitFor(app.settings.prefixLimits ?? {}, to);
    if (!match) return;
    const key = `pump:${app.id}:velocity:${match.prefix}`;
    const windowMs = match.limit.windowSeconds * 1000;
    const result = await this.store.slidingHit(key, match.limit.max, windowMs, this.clock());
    if (!result.allowed) {
      throw new OtpdError('RATE_LIMITED', `at most ${match.limit.max} sends to numbers starting ${match.prefix} per ${match.limit.windowSeconds} s; retry in ${retryAfterSeconds(result.retryAfterMs)} s`, {
        retryAfter: retryAfterSeconds(result.retryAfterMs),
        extensions: { limit: 'sends-per-prefix', max: match.limit.max, windowSeconds: match.limit.windowSeconds },
      });
    }
    refunds.push(async () => {
      await this.store.slidingHit(key, match.limit.max, windowMs, this.clock(), -1);
    });
  }

  /** The daily cap: a fixed window of one UTC day, counted in millionths of the price unit. */
  private async checkSpend(app: AppRecord, channel: Channel, to: string, refunds: Refund[]): Promise<void> {
    const cap = app.settings.dailySpendCap?.[channel];
    if (cap === undefined) return;
    const price = priceMicros(app.settings.prices ?? {}, channel, to);
    if (price === 0) return;
    const key = `pump:${app.id}:spend:${channel}`;
    const now = this.clock();
    const result = await this.store.hit(key, toMicros(cap), DAY_MS, now, price);
    if (!result.allowed) {
      throw new OtpdError('RATE_LIMITED', `this app has reached its daily ${channel} spend cap of ${cap}; sends resume at 00:00 UTC`, {
        retryAfter: retryAfterSeconds(result.resetMs),
        extensions: { limit: 'daily-spend-cap' },
      });
    }
    const day = Math.floor(now / DAY_MS);
    refunds.push(async () => {
      const later = this.clock();
      // A refund after midnight would lower the new day's count instead: the old day is over anyway.
      if (Math.floor(later / DAY_MS) === day) await this.store.hit(key, toMicros(cap), DAY_MS, later, -price);
    });
  }
}
