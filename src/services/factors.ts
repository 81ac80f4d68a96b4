import type { Logger } from 'pino';
import QRCode from 'qrcode';
import { constantTimeEqual } from '../core/codes.js';
import { newId } from '../core/ids.js';
import { Keyring, sha256Hex } from '../core/keyring.js';
import {
  base32Decode,
  base32Encode,
  checkLabelPart,
  checkOtp,
  generateSecret,
  keyUri,
  lockSeconds,
  otpParams,
  type OtpAlgorithm,
  type OtpParams,
  type OtpType,
} from '../core/otp.js';
import type { RequestContext } from '../core/rate-limits.js';
import { generateRecoveryCodes, normalizeRecoveryCode } from '../core/recovery-codes.js';
import { invalid, isOtpdError, OtpdError } from '../errors.js';
import type { AppRecord, Store, VersionedRecord } from '../store/store.js';
import { ownedByIdPrefix, type AppOwnedRecords } from './app-records.js';
import type { RecordRewrap } from './secrets-rotation.js';

export const FACTOR_STATUSES = ['unverified', 'verified'] as const;
export type FactorStatus = (typeof FACTOR_STATUSES)[number];

/**
 * A factor as stored (one generic record per factor, so it works on every store). The secret is never
 * stored in the clear: `secret` is AES-256-GCM under the keyring's `factor-secret` subkey with the factor
 * id as associated data, and names the key id it was written under (standards S1).
 */
export interface FactorRecord {
  id: string;
  appId: string;
  type: OtpType;
  status: FactorStatus;
  account: string;
  issuer: string;
  algorithm: OtpAlgorithm;
  digits: number;
  period: number | null;
  /** `kid.iv.tag.ciphertext` of the Base32 secret. */
  secret: string;
  /** Key id of `secret`, so a rotation can find what is still under the previous key. */
  secretKid: string;
  /** TOTP: last accepted time step; no code of it or before it is accepted again (standards V2). */
  lastUsedStep: number | null;
  /** HOTP: the next counter expected (standards V3). */
  counter: number;
  /** Consecutive failed codes; reset by an accepted one (standards T1). */
  failures: number;
  /** Epoch ms until which every code, right or wrong, is refused. */
  lockedUntil: number | null;
  recoveryCodes: StoredRecoveryCodes | null;
  createdAt: number;
  updatedAt: number;
  verifiedAt: number | null;
}

interface StoredRecoveryCodes {
  /** Key id of the hashes. */
  kid: string;
  codes: { hash: string; usedAt: number | null }[];
}

export interface EnrolInput {
  type: string;
  account: string;
  issuer?: string | undefined;
  digits?: number | undefined;
  period?: number | undefined;
  algorithm?: string | undefined;
}

/** What an enrolment returns once: the secret (and so its URI and QR code) is never available again. */
export interface Enrolment {
  factor: FactorRecord;
  /** Base32 without padding. */
  secret: string;
  uri: string;
}

export type FactorCheckReason = 'invalid_code' | 'code_reused';

export interface FactorCheck {
  valid: boolean;
  reason?: FactorCheckReason;
  factor: FactorRecord;
  /** Set when the code was a recovery code (valid or reused): how many unused ones are left. */
  recoveryCodesRemaining?: number;
}

const FACTORS = 'factor';
const USER_KEYS = 'factor-user-key';
/** Authenticator secrets and their user-id mappings go with their app (`AppsService.delete`). */
export const FACTOR_RECORDS: AppOwnedRecords[] = [
  { namespace: FACTORS, ownerOf: (_id, value) => (value as { appId?: string }).appId },
  ownedByIdPrefix(USER_KEYS),
];
/**
 * Compare-and-set rounds one verification may take. Each lost round means another request on the same
 * factor won, so N concurrent requests finish within N rounds; past this the caller is told to retry.
 */
const MAX_CAS_ROUNDS = 64;

/** The width of the seed-004 example QR image, kept for every QR PNG otpd renders. */
const QR_WIDTH = 300;
const QR_OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

export function recoveryCodesRemaining(factor: FactorRecord): number | null {
  return factor.recoveryCodes ? factor.recoveryCodes.codes.filter((c) => c.usedAt === null).length : null;
}

/**
 * Authenticator factors (TOTP/HOTP) and their recovery codes. The native `/v1/factors` routes and the
 * seed-004 dialect both call this service; every state change is a compare-and-set on the factor record,
 * so concurrent requests on any number of otpd processes sharing a store behave as one.
 */
export class FactorsService {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
    private readonly logger: Logger,
    /** The audit log and webhooks (src/services/audit.ts): every checked code, `factor.verified` among them. */
    private readonly activity?: { factorChecked(app: AppRecord, before: FactorRecord, result: FactorCheck, context: RequestContext): void },
  ) {}

  async enrol(app: AppRecord, input: EnrolInput): Promise<Enrolment> {
    const params = otpParams(input);
    if (typeof input.account !== 'string') throw invalid('account', 'is required');
    const account = checkLabelPart('account', input.account);
    // The default issuer is the app's name (decisions 18).
    const issuer = checkLabelPart('issuer', input.issuer ?? app.name);
    const now = this.clock();
    const id = newId('fa', now);
    const secret = base32Encode(generateSecret(params.algorithm));
    const sealed = this.keyring.encrypt('factor-secret', secret, id);
    const factor: FactorRecord = {
      id,
      appId: app.id,
      ...params,
      status: 'unverified',
      account,
      issuer,
      secret: sealed,
      secretKid: Keyring.kidOf(sealed),
      lastUsedStep: null,
      counter: 0,
      failures: 0,
      lockedUntil: null,
      recoveryCodes: null,
      createdAt: now,
      updatedAt: now,
      verifiedAt: null,
    };
    const uri = keyUri({ params, secret, issuer, account, counter: 0 });
    if ((await this.store.putRecord(FACTORS, id, factor, { ifVersion: null }, now)) === undefined) {
      throw new OtpdError('INTERNAL', 'factor id collision');
    }
    return { factor, secret, uri };
  }

  /**
   * The QR code of an enrolment's otpauth:// URI as a PNG in plain base64, without a data: prefix
   * (decisions 18). Rendered only for an answer that shows it: a 300-pixel PNG costs tens of milliseconds.
   */
  async qrPng(uri: string): Promise<string> {
    return (await QRCode.toBuffer(uri, { ...QR_OPTIONS, type: 'png', width: QR_WIDTH })).toString('base64');
  }

  /** The same QR code as an SVG document. */
  qrSvg(uri: string): Promise<string> {
    return QRCode.toString(uri, { ...QR_OPTIONS, type: 'svg' });
  }

  async get(app: AppRecord, id: string): Promise<FactorRecord> {
    return (await this.load(app, id)).value;
  }

  async delete(app: AppRecord, id: string): Promise<void> {
    await this.load(app, id);
    await this.store.deleteRecord(FACTORS, id);
  }

  /**
   * Checks an authenticator code, or a recovery code, against a factor. The first accepted code verifies
   * an unverified factor. A locked factor refuses every code with FACTOR_LOCKED (standards T1); a secret
   * that does not decrypt under the configured keys is SECRET_MISMATCH, never `valid: false` (S1).
   */
  verify(app: AppRecord, id: string, code: string, context: RequestContext): Promise<FactorCheck> {
    return this.check(app, id, code, context);
  }

  /** Issues a new set of ten recovery codes (the previous set stops working); shown once. */
  async issueRecoveryCodes(app: AppRecord, id: string): Promise<{ factor: FactorRecord; codes: string[] }> {
    const codes = generateRecoveryCodes();
    const kid = this.keyring.currentKid;
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const current = await this.load(app, id);
      if (current.value.status !== 'verified') {
        throw new OtpdError('FACTOR_NOT_VERIFIED', 'verify the factor with a code from the authenticator app before issuing recovery codes');
      }
      const now = this.clock();
      const factor: FactorRecord = {
        ...current.value,
        recoveryCodes: { kid, codes: codes.map((c) => ({ hash: this.recoveryHash(id, normalizeRecoveryCode(c)!, kid), usedAt: null })) },
        updatedAt: now,
      };
      if ((await this.store.putRecord(FACTORS, id, factor, { ifVersion: current.version }, now)) !== undefined) return { factor, codes };
    }
    throw this.contention();
  }

  // --- seed 004: one key per (app, userId) ------------------------------------------------------

  /**
   * Issues a TOTP key (SHA1, 6 digits, 30 s — what every authenticator app reads) for a user of the app,
   * replacing the one issued before, whose codes stop working. Issuer = `issuer` or the app's name.
   */
  async issueUserKey(app: AppRecord, userId: string, issuer?: string): Promise<Enrolment> {
    const enrolment = await this.enrol(app, { type: 'totp', account: userId, issuer });
    const mappingId = this.userKeyId(app, userId);
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const now = this.clock();
      const previous = await this.store.getRecord<{ factorId: string }>(USER_KEYS, mappingId, now);
      const written = await this.store.putRecord(USER_KEYS, mappingId, { factorId: enrolment.factor.id }, { ifVersion: previous ? previous.version : null }, now);
      if (written !== undefined) {
        if (previous) await this.store.deleteRecord(FACTORS, previous.value.factorId);
        return enrolment;
      }
    }
    await this.store.deleteRecord(FACTORS, enrolment.factor.id);
    throw this.contention();
  }

  /**
   * Checks a code for the key issued to `userId`. `encodedKey` must be that key (compared in constant
   * time); an unknown user or another key is NOT_FOUND.
   */
  async verifyUserKey(app: AppRecord, userId: string, encodedKey: string, code: string, context: RequestContext): Promise<FactorCheck> {
    const notIssued = () => new OtpdError('NOT_FOUND', 'encodedKey: is not the key issued to this userId');
    const mapping = await this.store.getRecord<{ factorId: string }>(USER_KEYS, this.userKeyId(app, userId), this.clock());
    if (!mapping) throw notIssued();
    try {
      return await this.check(app, mapping.value.factorId, code, context, encodedKey);
    } catch (error) {
      // The factor behind the mapping was deleted (native DELETE): the key is gone, and its id stays private.
      throw isOtpdError(error, 'NOT_FOUND') ? notIssued() : error;
    }
  }

  private userKeyId(app: AppRecord, userId: string): string {
    return `${app.id}:${sha256Hex(userId)}`;
  }

  // --- internals ---------------------------------------------------------------------------------

  /** A factor of this app; another app's factor answers exactly like an unknown id (decisions 13). */
  private async load(app: AppRecord, id: string): Promise<VersionedRecord<FactorRecord>> {
    const found = id.length > 0 && id.length <= 64 ? await this.store.getRecord<FactorRecord>(FACTORS, id, this.clock()) : undefined;
    if (!found || found.value.appId !== app.id) throw new OtpdError('NOT_FOUND', `no factor ${id}`);
    return found;
  }

  private recoveryHash(factorId: string, normalized: string, kid: string): string {
    return this.keyring.mac('code-hash', `recovery:${factorId}:${normalized}`, kid);
  }

  private contention(): OtpdError {
    return new OtpdError('RATE_LIMITED', 'too many concurrent requests on this factor; retry', { retryAfter: 1 });
  }

  private async check(app: AppRecord, id: string, input: string, context: RequestContext, expectedSecret?: string): Promise<FactorCheck> {
    if (typeof input !== 'string') throw invalid('code', 'is required');
    let secret: string | undefined;
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const current = await this.load(app, id);
      const factor = current.value;
      // Fails closed with SECRET_MISMATCH when the server secret is not the one that wrote the factor.
      secret ??= this.keyring.decrypt('factor-secret', factor.secret, factor.id);
      if (expectedSecret !== undefined && !constantTimeEqual(expectedSecret, secret)) throw new OtpdError('NOT_FOUND', 'the key does not match');
      const now = this.clock();
      if (factor.lockedUntil !== null && now < factor.lockedUntil) {
        const retryAfter = Math.max(1, Math.ceil((factor.lockedUntil - now) / 1000));
        throw new OtpdError('FACTOR_LOCKED', `too many wrong codes for this factor; try again in ${retryAfter} s`, {
          retryAfter,
          extensions: { lockedUntil: new Date(factor.lockedUntil).toISOString() },
        });
      }
      const decision = this.decide(app, factor, secret, input, now);
      if (decision.next === undefined) {
        this.activity?.factorChecked(app, factor, decision.result, context);
        return decision.result;
      }
      const version = await this.store.putRecord(FACTORS, id, decision.next, { ifVersion: current.version }, now);
      if (version !== undefined) {
        this.activity?.factorChecked(app, factor, { ...decision.result, factor: decision.next }, context);
        if (!decision.result.valid && decision.next.lockedUntil !== null) {
          this.logger.info({ factorId: id, appId: app.id, failures: decision.next.failures }, 'factor locked after failed codes');
        }
        return { ...decision.result, factor: decision.next };
      }
      // Another request changed the factor between our read and write: decide again on what it wrote.
    }
    throw this.contention();
  }

  /** What one code does to a factor: the answer, and the record to write (undefined: nothing changes). */
  private decide(app: AppRecord, factor: FactorRecord, secret: string, input: string, now: number): { result: FactorCheck; next?: FactorRecord } {
    const compact = input.replace(/[\s-]/g, '');
    const isOtp = /^\d+$/.test(compact) && compact.length === factor.digits;
    const recovery = isOtp ? undefined : normalizeRecoveryCode(compact);
    if (!isOtp && recovery === undefined) {
      throw invalid('code', `must be the ${factor.digits}-digit code from the authenticator app, or a recovery code (XXXX-XXXX-XXXX)`);
    }

    const failed = (reason: FactorCheckReason): { result: FactorCheck; next: FactorRecord } => {
      const failures = factor.failures + 1;
      const lock = lockSeconds(failures);
      const next: FactorRecord = { ...factor, failures, lockedUntil: lock > 0 ? now + lock * 1000 : null, updatedAt: now };
      return { result: { valid: false, reason, factor: next }, next };
    };
    const accepted = (changes: Partial<FactorRecord>): { result: FactorCheck; next: FactorRecord } => {
      const next: FactorRecord = {
        ...factor,
        ...changes,
        status: 'verified',
        verifiedAt: factor.verifiedAt ?? now,
        failures: 0,
        lockedUntil: null,
        updatedAt: now,
      };
      return { result: { valid: true, factor: next }, next };
    };

    if (recovery !== undefined) {
      const stored = factor.recoveryCodes;
      if (!stored) return failed('invalid_code');
      const hash = this.recoveryHash(factor.id, recovery, stored.kid);
      let index = -1;
      stored.codes.forEach((c, i) => {
        if (constantTimeEqual(c.hash, hash) && index === -1) index = i;
      });
      const remaining = stored.codes.filter((c) => c.usedAt === null).length;
      if (index === -1) return failed('invalid_code');
      if (stored.codes[index]!.usedAt !== null) {
        this.logger.warn({ factorId: factor.id, appId: app.id }, 'used recovery code presented again');
        return { result: { valid: false, reason: 'code_reused', factor, recoveryCodesRemaining: remaining } };
      }
      const codes = stored.codes.map((c, i) => (i === index ? { ...c, usedAt: now } : c));
      const out = accepted({ recoveryCodes: { ...stored, codes } });
      return { ...out, result: { ...out.result, recoveryCodesRemaining: remaining - 1 } };
    }

    const params: OtpParams = { type: factor.type, algorithm: factor.algorithm, digits: factor.digits, period: factor.period };
    const match = checkOtp(
      base32Decode(secret)!,
      compact,
      params,
      { lastUsedStep: factor.lastUsedStep, counter: factor.counter },
      { totpWindow: app.settings.totpWindow, hotpLookAhead: app.settings.hotpLookAhead },
      now,
    );
    if (match.outcome === 'accepted') return accepted(match.state);
    if (match.outcome === 'reused') {
      // A replayed code proves nothing new about the secret, so it does not count as a guess; it is logged.
      this.logger.warn({ factorId: factor.id, appId: app.id }, 'authenticator code replayed');
      return { result: { valid: false, reason: 'code_reused', factor } };
    }
    return failed('invalid_code');
  }
}

/**
 * `otpd secrets rotate` (src/services/secrets-rotation.ts): a factor's secret re-encrypted under the current
 * key. Recovery-code hashes cannot be re-made without the codes: they keep their key id and work while that
 * key is configured (OTPD_SECRET_PREVIOUS); `staleHashes` counts the factors concerned.
 */
export const FACTOR_REWRAP: RecordRewrap<FactorRecord> = {
  namespace: FACTORS,
  rewrap(factor, id, keyring) {
    if (factor.secretKid === keyring.currentKid) return undefined;
    const secret = keyring.encrypt('factor-secret', keyring.decrypt('factor-secret', factor.secret, id), id);
    return { ...factor, secret, secretKid: Keyring.kidOf(secret) };
  },
  staleHashes: (factor, keyring) => (factor.recoveryCodes !== null && factor.recoveryCodes.kid !== keyring.currentKid ? 1 : 0),
};
