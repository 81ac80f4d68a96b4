import { parseDestination, type Channel } from '../core/destination.js';
import { isExpired, type CheckOutcome, type VerificationRecord } from '../core/verification.js';
import { isOtpdError, OtpdError } from '../errors.js';
import type { RequestContext } from '../core/rate-limits.js';
import type { AppRecord, Store } from '../store/store.js';
import type { VerificationsService } from './verifications.js';

/**
 * Verifications named by the client (seed 002's `/api/otp/:id`, and the hosted page at
 * `/otp/:namespace/:id`): a store record maps (app, client id) to the otpd verification behind it, with
 * the few fields the dialect echoes that otpd itself has no column for. The record expires an hour after
 * its verification does, so no binding outlives what it points at by long (no key without expiry).
 */
export interface NamedBinding {
  verificationId: string;
  /** `to` exactly as the client sent it; seed 002 echoes it unchanged (decisions 14). */
  to: string;
  provider: string;
  channelDescription: string;
  addressDescription: string;
  /** The parsed `extra` JSON, returned as given. */
  extra: unknown;
}

export interface NamedVerification {
  app: AppRecord;
  clientId: string;
  binding: NamedBinding;
  verification: VerificationRecord;
  /** The service clock when this was read, for seconds-left answers (`ttl`). */
  readAt: number;
}

export interface NamedCreateInput {
  /** As the client sent it. */
  to: string;
  /** The destination otpd sends to (E.164 or an address). */
  destination: string;
  channel?: Channel;
  ttl?: number;
  maxAttempts?: number;
  provider: string;
  channelDescription: string;
  addressDescription: string;
  extra: unknown;
  /** A caller-chosen code, where the app allows it (`callerCodes`). */
  code?: string;
}

export interface NamedPutResult {
  named: NamedVerification;
  /** The code just sent, only when asked for (`revealCode`). */
  code?: string;
  /** `resent`: the id had a pending verification for the same destination, which got a new code. */
  action: 'created' | 'resent';
}

export interface NamedCheckResult extends NamedVerification {
  outcome: CheckOutcome;
}

const NAMESPACE = 'named-verification';
/** How long a binding outlives its verification, so a late check hears "expired" rather than "unknown". */
const RETAIN_AFTER_EXPIRY_MS = 3_600_000;

function recordId(app: AppRecord, clientId: string): string {
  return `${app.id}:${clientId}`;
}

/** Whether a verification no longer takes codes because its failed attempts reached the limit. */
export function isLocked(verification: VerificationRecord): boolean {
  return verification.status === 'max_attempts_reached' || (verification.status === 'pending' && verification.attempts >= verification.maxAttempts);
}

export class NamedVerificationsService {
  constructor(
    private readonly store: Store,
    private readonly verifications: VerificationsService,
    private readonly clock: () => number,
  ) {}

  /** The named verification, or undefined when the id was never used, was deleted, or has long expired. */
  async find(app: AppRecord, clientId: string): Promise<NamedVerification | undefined> {
    return (await this.findVersioned(app, clientId))?.named;
  }

  private async findVersioned(app: AppRecord, clientId: string): Promise<{ named: NamedVerification; version: number } | undefined> {
    const record = await this.store.getRecord<NamedBinding>(NAMESPACE, recordId(app, clientId), this.clock());
    if (!record) return undefined;
    const verification = await this.verifications.get(app, record.value.verificationId).catch((error: unknown) => {
      if (isOtpdError(error, 'NOT_FOUND')) return undefined;
      throw error;
    });
    if (!verification) return undefined;
    return { named: { app, clientId, binding: record.value, verification, readAt: this.clock() }, version: record.version };
  }

  /**
   * Creates and sends a verification under a client-chosen id (seed 002 `PUT /api/otp/:id`).
   * - the id's verification is locked (attempts used up) and unexpired → RATE_LIMITED until it expires,
   *   as otpgateway answers, so creating again never buys more guesses;
   * - it is pending for the same destination and channel → a resend of that verification: a new code,
   *   the attempt count kept (decisions 1), and the app's resend cooldown and send limit enforced;
   * - anything else (unused id, verified, expired, failed, another destination) → a new verification.
   *   The one it replaces is left to expire, not canceled: a later create for its destination then still
   *   carries its failed attempts over (decisions 2).
   */
  async put(app: AppRecord, clientId: string, input: NamedCreateInput, options: { revealCode: boolean; link?: string }, context: RequestContext): Promise<NamedPutResult> {
    const linkOption = { ...(options.link === undefined ? {} : { link: options.link }), ...(input.code === undefined ? {} : { code: input.code }) };
    const existing = await this.findVersioned(app, clientId);
    const now = this.clock();
    const binding = (verificationId: string): NamedBinding => ({
      verificationId,
      to: input.to,
      provider: input.provider,
      channelDescription: input.channelDescription,
      addressDescription: input.addressDescription,
      extra: input.extra,
    });

    if (existing) {
      const current = existing.named.verification;
      if (isLocked(current) && !isExpired(current, now)) {
        const seconds = Math.max(1, Math.ceil((current.expiresAt - now) / 1000));
        throw new OtpdError('RATE_LIMITED', `OTP attempts exceeded. Retry after ${seconds} seconds.`, {
          retryAfter: seconds,
          extensions: { ttl_seconds: seconds, attempts: current.attempts, max_attempts: current.maxAttempts },
        });
      }
      const destination = parseDestination(input.destination);
      const sameTarget = current.to === destination.value && (input.channel === undefined || input.channel === current.channel);
      if (current.status === 'pending' && !isExpired(current, now) && sameTarget) {
        const resent = options.revealCode
          ? await this.verifications.resendRevealingCode(app, current.id, context, linkOption)
          : { verification: await this.verifications.resend(app, current.id, context, linkOption), code: undefined };
        const next = binding(current.id);
        await this.write(app, clientId, next, resent.verification, existing.version);
        const named = { app, clientId, binding: next, verification: resent.verification, readAt: this.clock() };
        return resent.code === undefined ? { named, action: 'resent' } : { named, code: resent.code, action: 'resent' };
      }
    }

    const createInput = {
      to: input.destination,
      ...(input.channel === undefined ? {} : { channel: input.channel }),
      ...(input.ttl === undefined ? {} : { ttl: input.ttl }),
      ...(input.maxAttempts === undefined ? {} : { maxAttempts: input.maxAttempts }),
      ...linkOption,
    };
    const created = options.revealCode
      ? await this.verifications.createRevealingCode(app, createInput, context)
      : { verification: await this.verifications.create(app, createInput, context), code: undefined };
    const next = binding(created.verification.id);
    try {
      await this.write(app, clientId, next, created.verification, existing ? existing.version : null);
    } catch (error) {
      // Another request bound this id first: ours must not stay usable behind nobody's back.
      await this.verifications.cancel(app, created.verification.id, context).catch(() => undefined);
      throw error;
    }
    const named = { app, clientId, binding: next, verification: created.verification, readAt: this.clock() };
    return created.code === undefined ? { named, action: 'created' } : { named, code: created.code, action: 'created' };
  }

  /** Checks a code; a verified id is forgotten unless `keep` (otpgateway deletes it unless `skip_delete`). */
  async check(app: AppRecord, clientId: string, code: string, options: { keep: boolean }, context: RequestContext): Promise<NamedCheckResult> {
    const found = await this.find(app, clientId);
    if (!found) throw new OtpdError('NOT_FOUND', 'the OTP does not exist');
    const result = await this.verifications.check(app, found.verification.id, code, context);
    if (result.valid && !options.keep) await this.forget(app, clientId);
    return { ...found, verification: result.verification, outcome: result.outcome, readAt: this.clock() };
  }

  /** Sends a new code for the named verification (hosted page); cooldown and send limit apply. */
  async resend(app: AppRecord, clientId: string, context: RequestContext): Promise<NamedVerification> {
    const found = await this.findVersioned(app, clientId);
    if (!found) throw new OtpdError('NOT_FOUND', 'the OTP does not exist');
    const verification = await this.verifications.resend(app, found.named.verification.id, context);
    // The resend moved the expiry, so the binding's own expiry moves with it. A concurrent PUT that rebound
    // the id in the meantime wins; its binding is left as it is.
    await this.write(app, clientId, found.named.binding, verification, found.version).catch(() => undefined);
    return { ...found.named, verification, readAt: this.clock() };
  }

  async forget(app: AppRecord, clientId: string): Promise<void> {
    await this.store.deleteRecord(NAMESPACE, recordId(app, clientId));
  }

  private async write(app: AppRecord, clientId: string, binding: NamedBinding, verification: VerificationRecord, ifVersion: number | null): Promise<void> {
    const now = this.clock();
    const ttlMs = Math.max(1, verification.expiresAt - now) + RETAIN_AFTER_EXPIRY_MS;
    const version = await this.store.putRecord(NAMESPACE, recordId(app, clientId), binding, { ifVersion, ttlMs }, now);
    if (version === undefined) {
      throw new OtpdError('RATE_LIMITED', 'another request for this id is being handled; retry in a moment', { retryAfter: 1 });
    }
  }
}
