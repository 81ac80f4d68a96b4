import type { AppSettings } from '../core/settings.js';
import type { CheckOutcome, DeliveryStatus, VerificationRecord, ResendPolicy } from '../core/verification.js';

/**
 * The one storage contract. `sqlite/` and `redis/` implement it; `test/store/contract.ts` runs the same
 * suite against each. Every method that decides something (check, resend, cancel, counters, claims,
 * idempotency, compare-and-set) is atomic in the backend itself — one SQL transaction, one Lua script —
 * so any number of otpd processes sharing a store behave as one.
 *
 * Times are epoch milliseconds passed in by the caller, so tests drive the clock.
 */
export interface Store {
  readonly backend: 'sqlite' | 'redis';
  /** Resolves when the backend answers; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;

  // --- apps and API keys -------------------------------------------------------------------------
  /** Rejects with APP_EXISTS when the name is taken. */
  insertApp(app: AppRecord): Promise<void>;
  getApp(id: string): Promise<AppRecord | undefined>;
  getAppByName(name: string): Promise<AppRecord | undefined>;
  listApps(): Promise<AppRecord[]>;
  updateApp(app: AppRecord): Promise<void>;
  /** Deletes the app and its API keys. */
  deleteApp(id: string): Promise<boolean>;

  insertApiKey(key: ApiKeyRecord): Promise<void>;
  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(appId: string): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked; false when no such key or already revoked. */
  revokeApiKey(id: string, now: number): Promise<boolean>;

  // --- verifications ------------------------------------------------------------------------------
  /**
   * Inserts a verification. In the same atomic step, a pending verification of the same (app, to) is
   * canceled and its failed attempts are carried into the new one (decisions 2): the stored `attempts` is
   * max(record.attempts, carried).
   */
  createVerification(record: VerificationRecord, now: number): Promise<CreateResult>;
  getVerification(appId: string, id: string): Promise<VerificationRecord | undefined>;
  /** The latest verification of (app, to) that is pending and unexpired. */
  findPendingVerification(appId: string, to: string, now: number): Promise<VerificationRecord | undefined>;
  /**
   * Decides one check atomically (core `decideCheck`). `candidateHashes` maps key id → the keyed hash
   * of the submitted code under that key; the record's `codeKid` picks which one is compared.
   * undefined when the verification does not exist in that app.
   */
  checkVerification(appId: string, id: string, candidateHashes: Record<string, string>, now: number): Promise<CheckResult | undefined>;
  /** Replaces the code (new hash) if core `decideResend` allows it. */
  resendVerification(appId: string, id: string, newCode: { codeHash: string; codeKid: string }, policy: ResendPolicy, now: number): Promise<ResendResult | undefined>;
  cancelVerification(appId: string, id: string, now: number): Promise<TransitionResult | undefined>;
  /**
   * Records what a provider reported. A `failed` delivery of a pending verification moves it to `failed`
   * when `failVerification` is set (every provider gave up).
   */
  recordDelivery(appId: string, id: string, update: DeliveryUpdate, now: number): Promise<VerificationRecord | undefined>;
  /** Background cleanup: finished or expired verifications whose expiry is older than `olderThan` go. */
  purgeVerifications(olderThan: number): Promise<number>;

  // --- idempotency (24 h replay of a create) -------------------------------------------------------
  beginIdempotent(scope: string, key: string, fingerprint: string, ttlMs: number, now: number): Promise<IdempotencyBegin>;
  completeIdempotent(scope: string, key: string, response: StoredResponse, ttlMs: number, now: number): Promise<void>;
  /** Forgets an in-progress entry whose request failed, so the client may retry with the same key. */
  abandonIdempotent(scope: string, key: string): Promise<void>;

  // --- generic atomic primitives for quotas, replay guards and small documents ---------------------
  /**
   * Fixed-window counter: adds `cost` to `key`'s count for the window containing `now` unless that would
   * pass `limit`. Atomic; the window's key expires with the window.
   */
  hit(key: string, limit: number, windowMs: number, now: number, cost?: number): Promise<CounterResult>;
  /** True the first time a key is claimed within `ttlMs`; false afterwards (replay guards). */
  claimOnce(key: string, ttlMs: number, now: number): Promise<boolean>;
  getRecord<T>(namespace: string, id: string, now: number): Promise<VersionedRecord<T> | undefined>;
  /**
   * Writes a document. `ifVersion`: undefined writes unconditionally, null only if absent, a number only
   * if the stored version is that number (compare-and-set). Returns the new version, or undefined when the
   * condition failed. `ttlMs` makes the document expire.
   */
  putRecord<T>(namespace: string, id: string, value: T, options: { ifVersion?: number | null; ttlMs?: number }, now: number): Promise<number | undefined>;
  deleteRecord(namespace: string, id: string): Promise<boolean>;
}

export interface AppRecord {
  id: string;
  name: string;
  settings: AppSettings;
  createdAt: number;
  updatedAt: number;
}

export interface ApiKeyRecord {
  id: string;
  appId: string;
  /** SHA-256 of the key (decisions 5); the key itself is shown once and never stored. */
  hash: string;
  /** First characters of the key, to tell keys apart in listings. */
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface CreateResult {
  verification: VerificationRecord;
  supersededId?: string;
}

export interface CheckResult {
  outcome: CheckOutcome;
  verification: VerificationRecord;
}

export type ResendResult =
  | { ok: true; verification: VerificationRecord }
  | { ok: false; reason: 'not_pending' | 'expired' | 'max_sends' | 'cooldown'; retryAfterMs?: number; verification: VerificationRecord };

export interface TransitionResult {
  ok: boolean;
  verification: VerificationRecord;
}

export interface DeliveryUpdate {
  status: DeliveryStatus;
  provider?: string | null;
  providerMessageId?: string | null;
  failureReason?: string | null;
  failVerification?: boolean;
}

export interface StoredResponse {
  statusCode: number;
  body: unknown;
}

export type IdempotencyBegin =
  | { state: 'new' }
  | { state: 'in_progress' }
  | { state: 'mismatch' }
  | { state: 'done'; response: StoredResponse };

export interface CounterResult {
  allowed: boolean;
  /** Count in the window after this hit (unchanged when refused). */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface VersionedRecord<T> {
  value: T;
  version: number;
}
