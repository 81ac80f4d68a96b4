import { parseDestination } from '../core/destination.js';
import type { RequestContext } from '../core/rate-limits.js';
import { isOtpdError } from '../errors.js';
import type { AppRecord, Store } from '../store/store.js';
import type { VerificationsService } from './verifications.js';
import { countInWindow } from './window-counter.js';

/** Seed 003's answer to a verify, before wording: the dialect words each the same for every user id. */
export type UserOtpVerdict = 'verified' | 'incorrect' | 'locked';

interface PendingOtp {
  verificationId: string;
  to: string;
}

const PENDING = 'user-otp';
const MISSES = 'user-otp-misses';

/**
 * OTPs addressed by a caller's own user id (seed 003): each generate is a real verification, and the
 * latest one per (app, userId) is remembered for as long as the verification lives, so the verify call
 * needs only the user id and the code.
 *
 * The routes are keyless (decisions 8, 13), so a user id nobody asked a code for must be
 * indistinguishable from one with a pending code: its wrong guesses are counted the same way and lock at
 * the same attempt, and "no pending code" is worded exactly as a wrong code.
 */
export class UserOtpService {
  constructor(
    private readonly store: Store,
    private readonly verifications: VerificationsService,
    private readonly clock: () => number,
  ) {}

  /**
   * Sends a code to `to` for `userId`. A repeat for the same address while the code is pending is a
   * resend (new code, attempts kept, the app's resendCooldown and maxSends apply: decisions 1); a new
   * address or a finished verification starts a new one.
   */
  async send(app: AppRecord, userId: string, to: string, context: RequestContext): Promise<void> {
    const destination = parseDestination(to);
    const pending = await this.store.getRecord<PendingOtp>(PENDING, this.key(app, userId), this.clock());
    let expiresAt: number | undefined;
    let verificationId: string | undefined;
    if (pending && pending.value.to === destination.value) {
      try {
        const resent = await this.verifications.resend(app, pending.value.verificationId, context);
        ({ expiresAt, id: verificationId } = resent);
      } catch (error) {
        // Approved, expired, canceled or gone: start afresh. Cooldown and send limits stay errors.
        if (!isOtpdError(error, 'NOT_PENDING') && !isOtpdError(error, 'NOT_FOUND')) throw error;
      }
    }
    if (verificationId === undefined) {
      const created = await this.verifications.create(app, { to: destination.value }, context);
      ({ expiresAt, id: verificationId } = created);
    }
    const now = this.clock();
    await this.store.putRecord<PendingOtp>(PENDING, this.key(app, userId), { verificationId, to: destination.value }, { ttlMs: Math.max(1, expiresAt! - now) }, now);
  }

  async verify(app: AppRecord, userId: string, code: string, context: RequestContext): Promise<UserOtpVerdict> {
    const key = this.key(app, userId);
    const pending = await this.store.getRecord<PendingOtp>(PENDING, key, this.clock());
    if (pending) {
      try {
        // `check` passes the app's check rate limits first (RATE_LIMITED), as below for a user id without a code.
        const result = await this.verifications.check(app, pending.value.verificationId, code, context);
        if (result.valid) {
          await this.store.deleteRecord(PENDING, key);
          return 'verified';
        }
        if (result.verification.status === 'max_attempts_reached') return 'locked';
        if (result.verification.status === 'pending') return 'incorrect';
        // Expired, canceled or failed: nothing pending any more, answered like an unknown user id below.
      } catch (error) {
        if (!isOtpdError(error, 'NOT_FOUND')) throw error;
      }
    }
    // No pending code: count the guess as a pending verification would, so the answers (and the attempt at
    // which "too many attempts" starts) are the same for every user id, rate limits included.
    if (!pending) await this.verifications.rateLimiter.admitCheck(app, `user-otp:${userId}`, context);
    const now = this.clock();
    const miss = await countInWindow(this.store, MISSES, key, app.settings.maxAttempts, { windowMs: app.settings.ttl * 1000 }, now);
    return !miss.allowed || miss.count >= app.settings.maxAttempts ? 'locked' : 'incorrect';
  }

  private key(app: AppRecord, userId: string): string {
    return `${app.id}:${userId}`;
  }
}
