import { partnerSignature, signatureMatches, SIGNATURE_SKEW_SECONDS, timestampFresh } from '../core/partner-signature.js';
import { isOtpdError } from '../errors.js';
import type { RequestContext } from '../core/rate-limits.js';
import type { AppRecord, Store } from '../store/store.js';
import type { AppsService } from './apps.js';
import type { PartnerPrincipal, PartnerTokenService } from './partner-token.js';
import type { SubjectsService } from './subjects.js';
import type { VerificationsService } from './verifications.js';
import { countInWindow } from './window-counter.js';

/** A signed seed-000 request, fields already shaped (Timestamp parsed to Unix seconds). */
export interface SignedRequest {
  partnerId: string;
  getPlusId: string;
  timestamp: number;
  signature: string;
}

/** What a successful call answers: a fresh server Timestamp and its Signature (decisions 17). */
export interface SignedData {
  Timestamp: number;
  Signature: string;
  PartnerID: string;
  GetPlusID: string;
}

export type PartnerRefusal =
  | 'token_mismatch'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'replayed'
  | 'quota'
  | 'unknown_subject'
  | 'no_phone'
  | 'sms_disabled'
  | 'incorrect'
  | 'not_pending'
  | 'locked'
  | 'bad_credentials'
  | 'helper_disabled';

export type PartnerOutcome = { ok: true; data: SignedData } | { ok: false; reason: PartnerRefusal; retryAfterMs?: number };

interface PendingOtp {
  verificationId: string;
}

const PENDING = 'partner-otp';
const REQUESTS = 'partner-otp-requests';
/** A signature is remembered for the whole span in which its Timestamp would be accepted. */
const REPLAY_TTL_MS = (2 * SIGNATURE_SKEW_SECONDS + 60) * 1000;

/**
 * Seed 000: partners request and verify OTPs for their users (GetPlusID, registered as subjects with a
 * phone) with a partner token (checked by the route through PartnerTokenService) plus a per-request signature. The checks run in a fixed order, so each
 * failure is reported for the first thing that is wrong, and a replayed signature is refused before the
 * per-user quota is counted (decisions 17).
 */
export class PartnerService {
  constructor(
    private readonly store: Store,
    private readonly apps: AppsService,
    private readonly tokens: PartnerTokenService,
    private readonly subjects: SubjectsService,
    private readonly verifications: VerificationsService,
    private readonly clock: () => number,
  ) {}

  /** The token's partner is the request's → fresh Timestamp → signature → not seen before. */
  private async authenticate(principal: PartnerPrincipal, request: SignedRequest): Promise<{ ok: true; app: AppRecord; encryptKey: string } | { ok: false; reason: PartnerRefusal }> {
    if (principal.partnerId !== request.partnerId) return { ok: false, reason: 'token_mismatch' };
    const now = this.clock();
    if (!timestampFresh(request.timestamp, now)) return { ok: false, reason: 'stale_timestamp' };
    const { encryptKey } = await this.apps.credentialsOf(principal.app);
    if (!signatureMatches(encryptKey, request.partnerId, request.getPlusId, String(request.timestamp), request.signature)) return { ok: false, reason: 'bad_signature' };
    const claimed = await this.store.claimOnce(`partner-sig:${request.partnerId}:${request.timestamp}:${request.signature}`, REPLAY_TTL_MS, now);
    if (!claimed) return { ok: false, reason: 'replayed' };
    return { ok: true, app: principal.app, encryptKey };
  }

  /**
   * A fresh Timestamp and Signature for the answer. The Timestamp is the server's time, or one second past
   * the request's when that is later, so the pair returned is never the one just claimed: a client may
   * send it on (the seed's Postman flow does) without tripping the replay guard.
   */
  private fresh(encryptKey: string, request: SignedRequest): SignedData {
    const timestamp = Math.max(Math.floor(this.clock() / 1000), request.timestamp + 1);
    return { Timestamp: timestamp, Signature: partnerSignature(encryptKey, request.partnerId, request.getPlusId, timestamp), PartnerID: request.partnerId, GetPlusID: request.getPlusId };
  }

  /** Sends a code by SMS to the subject's registered phone: `partnerOtpLimit` requests per GetPlusID per `partnerOtpWindow` seconds. */
  async requestOtp(principal: PartnerPrincipal, request: SignedRequest, context: RequestContext): Promise<PartnerOutcome> {
    const auth = await this.authenticate(principal, request);
    if (!auth.ok) return auth;
    const { app } = auth;
    const now = this.clock();
    const quota = await countInWindow(this.store, REQUESTS, `${app.id}:${request.getPlusId}`, app.settings.partnerOtpLimit, { windowMs: app.settings.partnerOtpWindow * 1000 }, now);
    if (!quota.allowed) return { ok: false, reason: 'quota', retryAfterMs: quota.resetMs };
    const subject = await this.subjects.find(app, request.getPlusId);
    if (!subject) return { ok: false, reason: 'unknown_subject' };
    if (!subject.phone) return { ok: false, reason: 'no_phone' };
    if (!app.settings.channels.includes('sms')) return { ok: false, reason: 'sms_disabled' };
    const verification = await this.verifications.create(app, { to: subject.phone, channel: 'sms' }, context);
    await this.store.putRecord<PendingOtp>(PENDING, `${app.id}:${request.getPlusId}`, { verificationId: verification.id }, { ttlMs: Math.max(1, verification.expiresAt - this.clock()) }, this.clock());
    return { ok: true, data: this.fresh(auth.encryptKey, request) };
  }

  /** Checks the code of the GetPlusID's latest OTP request. */
  async verifyOtp(principal: PartnerPrincipal, request: SignedRequest, code: string, context: RequestContext): Promise<PartnerOutcome> {
    const auth = await this.authenticate(principal, request);
    if (!auth.ok) return auth;
    const key = `${auth.app.id}:${request.getPlusId}`;
    const pending = await this.store.getRecord<PendingOtp>(PENDING, key, this.clock());
    if (!pending) return { ok: false, reason: 'not_pending' };
    try {
      const result = await this.verifications.check(auth.app, pending.value.verificationId, code, context);
      if (result.valid) {
        await this.store.deleteRecord(PENDING, key);
        return { ok: true, data: this.fresh(auth.encryptKey, request) };
      }
      if (result.verification.status === 'max_attempts_reached') return { ok: false, reason: 'locked' };
      return { ok: false, reason: result.verification.status === 'pending' ? 'incorrect' : 'not_pending' };
    } catch (error) {
      if (isOtpdError(error, 'NOT_FOUND')) return { ok: false, reason: 'not_pending' };
      throw error;
    }
  }

  /**
   * The development helper: signs (PartnerID, GetPlusID, now) with the partner's EncryptKey, given that
   * key, where the app's `signatureHelper` setting allows it. Credentials are checked first, so the
   * setting of an app is told only to its partner.
   */
  async sign(partnerId: string, encryptKey: string, getPlusId: string): Promise<PartnerOutcome> {
    const principal = await this.tokens.authenticateClient(partnerId, encryptKey);
    if (!principal) return { ok: false, reason: 'bad_credentials' };
    if (!principal.app.settings.signatureHelper) return { ok: false, reason: 'helper_disabled' };
    const timestamp = Math.floor(this.clock() / 1000);
    return { ok: true, data: { Timestamp: timestamp, Signature: partnerSignature(encryptKey, partnerId, getPlusId, timestamp), PartnerID: partnerId, GetPlusID: getPlusId } };
  }
}
