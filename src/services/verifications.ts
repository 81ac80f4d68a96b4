import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { generateNumericCode } from '../core/codes.js';
import { channelFits, defaultChannelFor, parseDestination, type Channel } from '../core/destination.js';
import { newVerificationId, routingTag } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import type { CheckOutcome, VerificationRecord } from '../core/verification.js';
import type { Delivery } from '../delivery/index.js';
import { renderMessage } from '../delivery/templates.js';
import { invalid, OtpdError } from '../errors.js';
import type { AppRecord, DeliveryUpdate, StoredResponse, Store } from '../store/store.js';

export interface CreateVerificationInput {
  to: string;
  channel?: Channel;
  codeLength?: number;
  ttl?: number;
  maxAttempts?: number;
  locale?: string;
  metadata?: Record<string, unknown>;
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
export class VerificationsService {
  private readonly routingKey: Buffer;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly delivery: Delivery,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {
    this.routingKey = keyring.subkey('routing');
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

  async create(app: AppRecord, input: CreateVerificationInput): Promise<VerificationRecord> {
    return (await this.createRevealingCode(app, input)).verification;
  }

  /** `create`, also returning the code; only for a dialect that echoes it where the app's `echoCode` allows. */
  async createRevealingCode(app: AppRecord, input: CreateVerificationInput): Promise<RevealedCode> {
    const destination = parseDestination(input.to);
    const channel = input.channel ?? defaultChannelFor(destination);
    if (!channelFits(channel, destination)) {
      throw invalid('channel', destination.kind === 'email' ? `${channel} needs a phone number in to; use email for an address` : 'email needs an email address in to');
    }
    if (!app.settings.channels.includes(channel)) throw invalid('channel', `${channel} is not enabled for this app (enabled: ${app.settings.channels.join(', ')})`);
    if (input.metadata !== undefined && Buffer.byteLength(JSON.stringify(input.metadata)) > METADATA_MAX_BYTES) {
      throw invalid('metadata', `must be at most ${METADATA_MAX_BYTES} bytes of JSON`);
    }
    const codeLength = input.codeLength ?? app.settings.codeLength;
    const ttlSeconds = input.ttl ?? app.settings.ttl;
    const now = this.clock();
    const id = newVerificationId(routingTag(this.routingKey, app.id, destination.value), now);
    const code = generateNumericCode(codeLength);
    const record: VerificationRecord = {
      id,
      appId: app.id,
      to: destination.value,
      channel,
      status: 'pending',
      codeHash: this.hashCode(id, code),
      codeKid: this.keyring.currentKid,
      codeLength,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? app.settings.maxAttempts,
      sends: 1,
      locale: input.locale ?? null,
      metadata: input.metadata ?? null,
      expiresAt: now + ttlSeconds * 1000,
      createdAt: now,
      updatedAt: now,
      lastSentAt: now,
      deliveryStatus: 'queued',
      deliveryProvider: null,
      providerMessageId: null,
      failureReason: null,
    };
    const { verification } = await this.store.createVerification(record, now);
    this.send(app, verification, code);
    return { verification, code };
  }

  /**
   * Runs `create` at most once per (app, Idempotency-Key) for 24 hours: a repeat with the same body gets
   * the first response and sends nothing; a different body is a 422; a concurrent repeat is a 409.
   */
  async createIdempotent(app: AppRecord, input: CreateVerificationInput, idempotencyKey: string): Promise<StoredResponse> {
    if (!IDEMPOTENCY_KEY.test(idempotencyKey)) throw invalid('Idempotency-Key', 'must be 1-255 printable ASCII characters without spaces');
    const fingerprint = createHash('sha256').update(JSON.stringify(input)).digest('base64url');
    const now = this.clock();
    const begin = await this.store.beginIdempotent(app.id, idempotencyKey, fingerprint, IDEMPOTENCY_TTL_MS, now);
    if (begin.state === 'done') return begin.response;
    if (begin.state === 'mismatch') throw new OtpdError('IDEMPOTENCY_MISMATCH', 'this Idempotency-Key was used with a different request body');
    if (begin.state === 'in_progress') throw new OtpdError('IDEMPOTENCY_IN_PROGRESS', 'the first request with this Idempotency-Key has not finished; retry shortly', { retryAfter: 1 });
    try {
      const verification = await this.create(app, input);
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

  async check(app: AppRecord, id: string, code: string): Promise<CheckOutput> {
    const result = await this.store.checkVerification(app.id, id, this.candidateHashes(id, code), this.clock());
    if (!result) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    if (result.outcome === 'wrong' && result.verification.status === 'max_attempts_reached') {
      this.logger.info({ verificationId: id, appId: app.id }, 'verification locked after too many wrong codes');
    }
    return { verification: result.verification, valid: result.outcome === 'approved', outcome: result.outcome };
  }

  /** Checks against the app's latest pending verification for `to`. */
  async checkByDestination(app: AppRecord, to: string, code: string): Promise<CheckOutput> {
    const destination = parseDestination(to);
    const pending = await this.store.findPendingVerification(app.id, destination.value, this.clock());
    if (!pending) throw new OtpdError('NOT_FOUND', 'no pending verification for this destination');
    return this.check(app, pending.id, code);
  }

  async resend(app: AppRecord, id: string): Promise<VerificationRecord> {
    return (await this.resendRevealingCode(app, id)).verification;
  }

  /** `resend`, also returning the new code; only for a dialect that echoes it where the app's `echoCode` allows. */
  async resendRevealingCode(app: AppRecord, id: string): Promise<RevealedCode> {
    const existing = await this.get(app, id);
    const code = generateNumericCode(existing.codeLength);
    const now = this.clock();
    // Every send sets expiresAt = lastSentAt + ttl, so the verification's own ttl is their difference.
    const policy = { maxSends: app.settings.maxSends, cooldownMs: app.settings.resendCooldown * 1000, ttlMs: existing.expiresAt - existing.lastSentAt };
    const result = await this.store.resendVerification(app.id, id, { codeHash: this.hashCode(id, code), codeKid: this.keyring.currentKid }, policy, now);
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
    this.send(app, result.verification, code);
    return { verification: result.verification, code };
  }

  async cancel(app: AppRecord, id: string): Promise<VerificationRecord> {
    const result = await this.store.cancelVerification(app.id, id, this.clock());
    if (!result) throw new OtpdError('NOT_FOUND', `no verification ${id}`);
    if (!result.ok) {
      throw new OtpdError('NOT_PENDING', `verification ${id} is ${result.verification.status}; only a pending verification can be canceled`, { extensions: { verificationStatus: result.verification.status } });
    }
    return result.verification;
  }

  /** The one entry point for delivery outcomes: provider acceptance, failures and later receipts. */
  async recordDeliveryStatus(appId: string, id: string, update: DeliveryUpdate): Promise<void> {
    await this.store.recordDelivery(appId, id, update, this.clock());
  }

  /** Background cleanup of verifications that ended longer than `retentionMs` ago. */
  purge(retentionMs: number): Promise<number> {
    return this.store.purgeVerifications(this.clock() - retentionMs);
  }

  private send(app: AppRecord, verification: VerificationRecord, code: string): void {
    this.sendCode(app, { reference: verification.id, to: verification.to, channel: verification.channel, code, expiresAt: verification.expiresAt, locale: verification.locale });
  }

  /**
   * Sends a code through the app's provider and templates. Besides verifications, seed 001 uses it for its
   * derived time-window codes, which no verification holds: their `reference` (not a `ve_` id) stands
   * where a verification id would, and delivery reports for it match no verification and change nothing.
   */
  sendCode(app: AppRecord, message: { reference: string; to: string; channel: Channel; code: string; expiresAt: number; locale?: string | null }): void {
    const minutes = Math.max(1, Math.round((message.expiresAt - this.clock()) / 60_000));
    const locale = message.locale ?? null;
    const { text, subject } = renderMessage({ appName: app.name, code: message.code, minutes, channel: message.channel, locale });
    this.delivery.dispatcher.dispatch(this.delivery.providerNameFor(app.settings.deliveryProvider), {
      verificationId: message.reference,
      appId: app.id,
      appName: app.name,
      channel: message.channel,
      to: message.to,
      code: message.code,
      locale,
      text,
      subject,
    });
  }
}
