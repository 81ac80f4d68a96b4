import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { constantTimeEqual, generateNumericCode } from '../core/codes.js';
import { channelFits, defaultChannelFor, parseDestination, type Channel } from '../core/destination.js';
import { newVerificationId, routingTag } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import type { RequestContext } from '../core/rate-limits.js';
import type { CheckOutcome, VerificationRecord } from '../core/verification.js';
import type { Delivery, QueuedSend } from '../delivery/index.js';
import { TEST_PROVIDER, testCodeFor } from '../delivery/test-numbers.js';
import { invalid, OtpdError } from '../errors.js';
import { Metrics } from '../metrics.js';
import type { OutboxLease } from '../store/outbox.js';
import type { AppRecord, DeliveryUpdate, StoredResponse, Store } from '../store/store.js';
import type { AuditService } from './audit.js';
import { RateLimiter } from './rate-limiter.js';

export interface CreateVerificationInput {
  to: string;
  channel?: Channel;
  codeLength?: number;
  ttl?: number;
  maxAttempts?: number;
  locale?: string;
  metadata?: Record<string, unknown>;
  /** Caller buckets (bucket name → value) counted against the app's `rateLimitBuckets`. */
  rateLimits?: Record<string, string | number>;
  /** A one-tap link to the hosted page the message may carry (`{link}` in templates). */
  link?: string;
  /**
   * A code the caller chose (seed 002 with the app's `callerCodes` on). Stored only as a keyed hash like
   * every code; without it, the code comes from the CSPRNG.
   */
  code?: string;
}

export interface CheckOutput {
  verification: VerificationRecord;
  valid: boolean;
  /** What this check decided: a dialect tells a counted wrong code from a verification that no longer takes codes. */
  outcome: CheckOutcome;
}

/** A verification with the plaintext code just sent, for dialects whose documented contract echoes it (standards S2). */
export interface RevealedCode {
  verification: VerificationRecord;
  code: string;
}

const METADATA_MAX_BYTES = 4096;
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Verifications: create (and send), check, resend, cancel, delivery reports. Native routes and every
 * dialect call these same methods; the code exists only in memory between generation and the provider.
 */
/**
 * A code the caller chose (seed 002's `otp`), accepted only where the app's `callerCodes` setting is on;
 * otherwise every code comes from the CSPRNG (standards O1). Checked before any limit is counted.
 */
function callerCode(app: AppRecord, code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  if (!app.settings.callerCodes) throw invalid('code', 'a caller-chosen code is not allowed for this app (setting callerCodes is off)');
  if (!/^\d{4,10}$/.test(code)) throw invalid('code', 'must be 4 to 10 digits');
  return code;
}

export class VerificationsService {
  private readonly routingKey: Buffer;
  /** Rate limits and the SMS-pumping guard (docs/abuse-protection.md); every send and check passes it. */
  readonly rateLimiter: RateLimiter;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly delivery: Delivery,
    private readonly clock: () => number,
    private readonly logger: Logger,
    private readonly metrics: Metrics = new Metrics(),
    /** The audit log and webhook events (src/services/audit.ts); none in unit tests that do not need them. */
    private readonly audit?: AuditService,
  ) {
    this.routingKey = keyring.subkey('routing');
    this.rateLimiter = new RateLimiter(store, clock, logger);
  }

  /** Keyed hash of a code bound to its verification (standards O3). */
  private hashCode(verificationId: string, code: string, kid = this.keyring.currentKid): string {
    return this.keyring.mac('code-hash', `${verificationId}:${code}`, kid);
  }

  private candidateHashes(verificationId: string, code: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const kid of this.keyring.kids) out[kid] = this.hashCode(verificationId, code, kid);
    return out;
  }

  /**
   * `context`: the caller (src/http/request-context.ts), for per-key and per-IP limits and the audit log.
   * Every method that counts a limit or records an entry takes it.
   */
  async create(app: AppRecord, input: CreateVerificationInput, context: RequestContext): Promise<VerificationRecord> {
    return (await this.createRevealingCode(app, input, context)).verification;
  }

  /** `create`, also returning the code; only for a dialect that echoes it where the app's `echoCode` allows. */
  async createRevealingCode(app: AppRecord, input: CreateVerificationInput, context: RequestContext): Promise<RevealedCode> {
    const destination = parseDestination(input.to);
    const channel = input.channel ?? defaultChannelFor(destination);
    if (!channelFits(channel, destination)) {
      throw invalid('channel', destination.kind === 'email' ? `${channel} needs a phone number in to; use email for an address` : 'email needs an email address in to');
    }
    if (!app.settings.channels.includes(channel)) throw invalid('channel', `${channel} is not enabled for this app (enabled: ${app.settings.channels.join(', ')})`);
    if (input.metadata !== undefined && Buffer.byteLength(JSON.stringify(input.metadata)) > METADATA_MAX_BYTES) {
      throw invalid('metadata', `must be at most ${METADATA_MAX_BYTES} bytes of JSON`);
    }
    const chosen = callerCode(app, input.code);
    // The caller's limits and the pumping guard refuse before anything is stored or sent; the destination's
    // cooldown and send window are decided by the store with the insert, in one step (`rule`).
    const admission = await this.rateLimiter.admitCaller(app, channel, destination.value, context, input.rateLimits);
    const codeLength = input.codeLength ?? app.settings.codeLength;
    const ttlSeconds = input.ttl ?? app.settings.ttl;
    const rule = this.rateLimiter.createRule(app, ttlSeconds * 1000);
    const now = this.clock();
    const id = newVerificationId(routingTag(this.routingKey, app.id, destination.value), now);
    // A test number gets its fixed code and never reaches a provider (app store review, CI).
    const testCode = testCodeFor(app.settings.testNumbers, destination.value);
    const code = testCode ?? chosen ?? generateNumericCode(codeLength);
    const record: VerificationRecord = {
      id,
      appId: app.id,
      to: destination.value,
      channel,
      status: 'pending',
      codeHash: this.hashCode(id, code),
      codeKid: this.keyring.currentKid,
      codeLength: code.length,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? app.settings.maxAttempts,
      sends: 1,
      locale: input.locale ?? null,
      metadata: input.metadata ?? null,
      expiresAt: now + ttlSeconds * 1000,
      createdAt: now,
      updatedAt: now,
      lastSentAt: now,
      deliveryStatus: testCode === undefined ? 'queued' : 'delivered',
      deliveryProvider: testCode === undefined ? null : TEST_PROVIDER,
      providerMessageId: null,
      failureReason: null,
    };
    // The message is written with the verification, in one store step (decisions 3): accepted means queued.
    const outbox = testCode === undefined ? this.delivery.prepare(this.queued(app, record, code, input.link), now) : undefined;
    const { verification, supersededId } = await this.store.createVerification(record, now, outbox?.message, rule).catch(async (error: unknown) => {
      if (outbox) this.delivery.abandon(outbox);
      await admission.refund();
      throw error;
    });
    // The superseded code no longer works: its message, if this process has not handed it over yet, stays unsent.
    if (supersededId) this.delivery.withdraw(supersededId);
    if (outbox) this.delivery.dispatch(outbox, verification);
    this.metrics.verifications.inc({ status: 'pending', channel });
    this.audit?.verification(app, 'verification.created', verification, context);
    return { verification, code };
  }

  /**
   * Runs `create` at most once per (app, Idempotency-Key) for 24 hours: a repeat with the same body gets
   * the first response and sends nothing; a different body is a 422; a concurrent repeat is a 409.
   */
  async createIdempotent(app: AppRecord, input: CreateVerificationInput, idempotencyKey: string, context: RequestContext): Promise<StoredResponse> {
    if (!IDEMPOTENCY_KEY.test(idempotencyKey)) throw invalid('Idempotency-Key', 'must be 1-255 printable ASCII characters without spaces');
    const fingerprint = createHash('sha256').update(JSON.stringify(input)).digest('base64url');
    const now = this.clock();
    const begin = await this.store.beginIdempotent(app.id, idempotencyKey, fingerprint, IDEMPOTENCY_TTL_MS, now);
    if (begin.state === 'done') return begin.response;
    if (begin.state === 'mismatch') throw new OtpdError('IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used with a different request body');
    if (begin.state === 'in_progress') throw new OtpdError('IDEMPOTENCY_IN_PROGRESS', 'the first request with this Idempotency-Key has not finished; retry shortly', { retryAfter: 1 });
    try {
      const verification = await this.create(app, input, context);
      // The stored copy never holds the code hash.
      const response: StoredResponse = { statusCode: 201, body: { ...verification, codeHash: '' } };
      await this.store.completeIdempotent(app.id, idempotencyKey, response, IDEMPOTENCY_TTL_MS, this.clock());
      return response;
    } catch (error) {
      await this.store.abandonIdempotent(app.id, idempotencyKey).catch(() => undefined);
      throw error;
    }
  }

  async get(app: AppRecord, id: string): Promise<VerificationRecord> {
    const verification = await this.store.getVerification(app.id, id);
    if (!verification) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    return verification;
  }

  async check(app: AppRecord, id: string, code: string, context: RequestContext): Promise<CheckOutput> {
    // Counted before the lookup, so an unknown id costs as much as a known one.
    await this.rateLimiter.admitCheck(app, id, context);
    return this.decideCheck(app, id, code, context);
  }

  private async decideCheck(app: AppRecord, id: string, code: string, context: RequestContext): Promise<CheckOutput> {
    const candidates = this.candidateHashes(id, code);
    const result = await this.store.checkVerification(app.id, id, candidates, this.clock());
    if (!result) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    this.metrics.recordCheck(result.outcome, result.verification);
    this.audit?.checked(app, result.outcome, result.verification, constantTimeEqual(candidates[result.verification.codeKid] ?? '', result.verification.codeHash), context);
    if (result.outcome === 'wrong' && result.verification.status === 'max_attempts_reached') {
      this.logger.info({ verificationId: id, appId: app.id }, 'verification locked after too many wrong codes');
    }
    if (result.outcome === 'approved') await this.rateLimiter.recordApproval(app, result.verification);
    return { verification: result.verification, valid: result.outcome === 'approved', outcome: result.outcome };
  }

  /** Checks against the app's latest pending verification for `to`. */
  async checkByDestination(app: AppRecord, to: string, code: string, context: RequestContext): Promise<CheckOutput> {
    const destination = parseDestination(to);
    await this.rateLimiter.admitCheck(app, `to:${destination.value}`, context);
    const pending = await this.store.findPendingVerification(app.id, destination.value, this.clock());
    if (!pending) throw new OtpdError('NOT_FOUND', 'no pending verification for this destination');
    return this.decideCheck(app, pending.id, code, context);
  }

  async resend(app: AppRecord, id: string, context: RequestContext, options: { link?: string; code?: string } = {}): Promise<VerificationRecord> {
    return (await this.resendRevealingCode(app, id, context, options)).verification;
  }

  /** `resend`, also returning the new code; only for a dialect that echoes it where the app's `echoCode` allows. */
  async resendRevealingCode(app: AppRecord, id: string, context: RequestContext, options: { link?: string; code?: string } = {}): Promise<RevealedCode> {
    const existing = await this.get(app, id);
    const chosen = callerCode(app, options.code);
    const admission = await this.rateLimiter.admitResend(app, existing);
    const testCode = testCodeFor(app.settings.testNumbers, existing.to);
    const code = testCode ?? chosen ?? generateNumericCode(existing.codeLength);
    const now = this.clock();
    // Every send sets expiresAt = lastSentAt + ttl, so the verification's own ttl is their difference.
    const policy = { maxSends: app.settings.maxSends, cooldownMs: app.settings.resendCooldown * 1000, ttlMs: existing.expiresAt - existing.lastSentAt };
    const next = { ...existing, sends: existing.sends + 1, expiresAt: now + policy.ttlMs };
    const outbox = testCode === undefined ? this.delivery.prepare(this.queued(app, next, code, options.link), now) : undefined;
    const result = await this.store.resendVerification(app.id, id, { codeHash: this.hashCode(id, code), codeKid: this.keyring.currentKid }, policy, now, outbox?.message).catch((error: unknown) => {
      if (outbox) this.delivery.abandon(outbox);
      throw error;
    });
    if (!result || !result.ok) {
      if (outbox) this.delivery.abandon(outbox);
      await admission.refund();
    }
    if (!result) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    if (!result.ok) {
      const retryAfter = result.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(result.retryAfterMs / 1000));
      switch (result.reason) {
        case 'max_sends':
          throw new OtpdError('MAX_SENDS', `this verification was already sent ${result.verification.sends} times (limit ${app.settings.maxSends}); create a new one after it expires`, retryAfter === undefined ? {} : { retryAfter });
        case 'cooldown':
          throw new OtpdError('RESEND_COOLDOWN', `wait ${retryAfter} s before sending this verification again`, retryAfter === undefined ? {} : { retryAfter });
        default:
          throw new OtpdError('NOT_PENDING', `verification ${id} is ${result.verification.status}; only a pending verification can be resent`, { extensions: { verificationStatus: result.verification.status } });
      }
    }
    // Sent before anything else may throw: a message written leased to this process is sent by it alone.
    if (outbox) this.delivery.dispatch(outbox, result.verification);
    this.metrics.resends.inc({ channel: result.verification.channel });
    this.audit?.verification(app, 'verification.resent', result.verification, context);
    await this.rateLimiter.markSent(app, existing.to, policy.ttlMs);
    if (outbox) return { verification: result.verification, code };
    const update = { status: 'delivered', provider: TEST_PROVIDER, providerMessageId: null, failureReason: null } as const;
    const verification = (await this.store.recordDelivery(app.id, id, update, now)) ?? result.verification;
    return { verification, code };
  }

  async cancel(app: AppRecord, id: string, context: RequestContext): Promise<VerificationRecord> {
    const result = await this.store.cancelVerification(app.id, id, this.clock());
    if (!result) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    if (!result.ok) {
      throw new OtpdError('NOT_PENDING', `verification ${id} is ${result.verification.status}; only a pending verification can be canceled`, { extensions: { verificationStatus: result.verification.status } });
    }
    this.delivery.withdraw(id);
    this.metrics.verifications.inc({ status: 'canceled', channel: result.verification.channel });
    this.audit?.verification(app, 'verification.canceled', result.verification, context);
    return result.verification;
  }

  /**
   * The one entry point for delivery outcomes: provider acceptance, failures and later receipts. `sent`: the
   * outbox lease of the message reported on, wiped in the same store step (Store `recordDelivery`).
   */
  async recordDeliveryStatus(appId: string, id: string, update: DeliveryUpdate, sent?: OutboxLease): Promise<void> {
    const verification = await this.store.recordDelivery(appId, id, update, this.clock(), sent);
    this.metrics.recordDelivery(update, verification);
    this.audit?.delivery(appId, update, verification);
  }

  /** Background cleanup of verifications that ended longer than `retentionMs` ago. */
  purge(retentionMs: number): Promise<number> {
    return this.store.purgeVerifications(this.clock() - retentionMs);
  }

  /** The outbox message of one send of a verification (sealed by `delivery.prepare`). */
  private queued(app: AppRecord, verification: Pick<VerificationRecord, 'id' | 'to' | 'channel' | 'locale' | 'sends' | 'expiresAt'>, code: string, link: string | undefined): QueuedSend {
    return { appId: app.id, reference: verification.id, to: verification.to, channel: verification.channel, code, locale: verification.locale, link: link ?? null, send: verification.sends, expiresAt: verification.expiresAt };
  }

  /**
   * Sends a code through the outbox, the app's route and templates. Besides verifications, seed 001 uses it
   * for its derived time-window codes, which no verification holds: their `reference` (not a `ve_` id)
   * stands where a verification id would, and no delivery report is recorded for them. Resolves once the
   * message is durably queued.
   */
  async sendCode(app: AppRecord, message: { reference: string; to: string; channel: Channel; code: string; expiresAt: number; locale?: string | null }): Promise<void> {
    await this.delivery.queue({ appId: app.id, reference: message.reference, to: message.to, channel: message.channel, code: message.code, locale: message.locale ?? null, link: null, send: 1, expiresAt: message.expiresAt });
  }
}
