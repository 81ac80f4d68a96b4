import type { SendAdmission, SendRule } from '../core/destination-sends.js';
import type { AppSettings } from '../core/settings.js';
import type { CheckOutcome, DeliveryStatus, VerificationRecord, ResendPolicy } from '../core/verification.js';
import type { OutboxLease, OutboxMessage, OutboxStore } from './outbox.js';

export type { OutboxLease, OutboxMessage, OutboxStore, OutboxVerificationState } from './outbox.js';

/**
 * The one storage contract. `sqlite/` and `redis/` implement it; `test/store/contract.ts` runs the same
 * suite against each. Every method that decides something (check, resend, cancel, counters, claims,
 * idempotency, compare-and-set) is atomic in the backend itself — one SQL transaction, one Lua script —
 * so any number of otpd processes sharing a store behave as one.
 *
 * Times are epoch milliseconds passed in by the caller, so tests drive the clock.
 */
export interface Store extends OutboxStore {
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
   * max(record.attempts, carried). `outbox`: the message to send, written in the same atomic step (decisions
   * 3), so an accepted verification never loses its message; the superseded verification's waiting message,
   * if any, is deleted with it.
   *
   * `rule`: the destination's send rules (as `admitSend`), decided first in the same atomic step. A create
   * they refuse writes nothing and rejects with RATE_LIMITED (core `sendRefusal`); an admitted one is counted
   * and starts the cooldown together with the insert, so no refund is ever needed.
   */
  createVerification(record: VerificationRecord, now: number, outbox?: OutboxMessage, rule?: SendRule): Promise<CreateResult>;
  getVerification(appId: string, id: string): Promise<VerificationRecord | undefined>;
  /** The latest verification of (app, to) that is pending and unexpired. */
  findPendingVerification(appId: string, to: string, now: number): Promise<VerificationRecord | undefined>;
  /**
   * Decides one check atomically (core `decideCheck`). `candidateHashes` maps key id → the keyed hash
   * of the submitted code under that key; the record's `codeKid` picks which one is compared.
   * undefined when the verification does not exist in that app.
   */
  checkVerification(appId: string, id: string, candidateHashes: Record<string, string>, now: number): Promise<CheckResult | undefined>;
  /**
   * Replaces the code (new hash) if core `decideResend` allows it; then, in the same step, `outbox` replaces
   * the verification's waiting message (its code no longer works).
   */
  resendVerification(appId: string, id: string, newCode: { codeHash: string; codeKid: string }, policy: ResendPolicy, now: number, outbox?: OutboxMessage): Promise<ResendResult | undefined>;
  cancelVerification(appId: string, id: string, now: number): Promise<TransitionResult | undefined>;
  /**
   * Records what a provider reported. A `failed` delivery of a pending verification moves it to `failed`
   * when `failVerification` is set (every provider gave up).
   *
   * `sent`: the held lease of this verification's message that the report is about, done with (a provider
   * took it): the message is wiped in the same step, exactly as `completeOutbox(sent)` would, whether or not
   * the report still applies. The report and the wipe land together or not at all; a process that dies
   * before leaves the message to be sent again after its lease, under the same message id.
   */
  recordDelivery(appId: string, id: string, update: DeliveryUpdate, now: number, sent?: OutboxLease): Promise<VerificationRecord | undefined>;
  /**
   * Background cleanup: finished or expired verifications whose expiry is older than `olderThan` go (only
   * those of `appId` when given, for per-app retention).
   */
  purgeVerifications(olderThan: number, appId?: string): Promise<number>;
  /**
   * Personal-data erasure: removes every verification of (app, to), pending or finished, the pending
   * index and the destination's send state (`admitSend`). Returns how many verifications went. Scans in
   * bounded chunks, so it may take a while on a large store but never holds the write lock (SQLite) or
   * blocks Redis for long.
   */
  eraseDestination(appId: string, to: string): Promise<number>;

  // --- destinations: the rules of each send to one (app, to) (core/destination-sends.ts) -------------
  /**
   * Decides one send to (app, to) under `rule` in one atomic step: its cooldown, then its send window. An
   * admitted send is counted and, with `rule.cooldownMs`, starts the cooldown; a refused one changes nothing.
   * The destination's state lasts until both have run out (`destinationExpiresAt`). A verification's create
   * decides the same rules inside `createVerification` instead.
   */
  admitSend(appId: string, to: string, rule: SendRule, now: number): Promise<SendAdmission>;
  /**
   * Gives back an admitted send that did not happen: one send off the window (never below zero), and the
   * cooldown it started (`claimedUntil`, the admission's `cooldownUntil`) unless a later send restarted it.
   */
  refundSend(appId: string, to: string, rule: SendRule, claimedUntil: number, now: number): Promise<void>;
  /** A resend went out: the destination's cooldown runs until at least `now + cooldownMs`. */
  restartCooldown(appId: string, to: string, cooldownMs: number, now: number): Promise<void>;

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
  /**
   * Sliding-window counter (core/sliding-window.ts: the weighted two-window estimate): adds `cost` to
   * `key` unless the count over the last `windowMs` would pass `limit`. A negative cost refunds an earlier
   * hit. Atomic; the state expires two windows after its window starts. Rate limits use this rather than
   * `hit` because a fixed window admits twice the limit across a window boundary.
   */
  slidingHit(key: string, limit: number, windowMs: number, now: number, cost?: number): Promise<SlidingCounterResult>;
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
  /**
   * Pages through the live records of a namespace (key rotation re-wraps every stored ciphertext). Order is
   * unspecified and a record may appear twice (Redis SCAN); every record present from the first call to the
   * last appears at least once. `nextCursor` is undefined on the last page. A page may hold more or fewer
   * than `limit` items.
   */
  listRecords<T>(namespace: string, cursor: string | undefined, limit: number, now: number): Promise<RecordPage<T>>;

  // --- audit log (docs/audit-and-events.md) --------------------------------------------------------
  /**
   * Appends entries to an app's audit log, in order; returns their ids (time-ordered, unique per app,
   * opaque). Entries older than `retentionMs` may be trimmed on the way (Redis).
   */
  appendAudit(appId: string, entries: NewAuditEntry[], retentionMs: number, now: number): Promise<string[]>;
  /**
   * An app's audit entries, newest first. At most `limit` items; a page may stop early (with a
   * `nextCursor`) after examining a bounded number of entries when filters match few of them.
   */
  listAudit(appId: string, filters: AuditFilters, cursor: string | undefined, limit: number): Promise<AuditPage>;
  /** Removes the given entries (erasure); returns how many existed. */
  deleteAudit(appId: string, ids: string[]): Promise<number>;
  /** Removes an app's entries written before `olderThan` (retention). */
  purgeAudit(appId: string, olderThan: number): Promise<number>;

  // --- event queue (webhooks: durable, at-least-once) ------------------------------------------------
  enqueueEvents(events: NewQueuedEvent[], now: number): Promise<void>;
  /**
   * Leases up to `limit` events due at `now`: each comes back with `attempts` already counted and is not
   * handed out again for `leaseMs` (another process, or this one after a crash, retries it after that).
   */
  claimEvents(now: number, leaseMs: number, limit: number): Promise<QueuedEvent[]>;
  /** Delivered or abandoned: the event leaves the queue. */
  completeEvent(id: string): Promise<void>;
  /** Schedules the next attempt; `lastError` says why this one failed. */
  retryEvent(id: string, dueAt: number, lastError: string): Promise<void>;
}

export interface RecordPage<T> {
  items: { id: string; value: T; version: number; expiresAt: number | null }[];
  nextCursor: string | undefined;
}

/** One audit entry as written (docs/audit-and-events.md). Never a code or a secret; the destination only hashed and masked. */
export interface NewAuditEntry {
  at: number;
  event: string;
  /** The verification, factor, API key or app the event is about (ids are prefixed: ve_, fa_, key_, app_). */
  resource: string | null;
  keyId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** Keyed hash of the destination (erasure finds a person's entries by it). */
  destinationHash: string | null;
  destinationMasked: string | null;
  /** Small facts about the event (channel, attempts, status); never codes or secrets. */
  details: Record<string, string | number | boolean | null> | null;
}

export interface AuditEntry extends NewAuditEntry {
  id: string;
}

export interface AuditFilters {
  event?: string;
  resource?: string;
  destinationHash?: string;
  /** Inclusive, epoch ms. */
  since?: number;
  /** Exclusive, epoch ms. */
  until?: number;
}

export interface AuditPage {
  items: AuditEntry[];
  nextCursor: string | undefined;
}

export interface NewQueuedEvent {
  id: string;
  appId: string;
  type: string;
  /** The JSON body to deliver (or, for timers, what the worker needs to build it). */
  payload: string;
  dueAt: number;
  /** The event is dropped, delivered or not, after this time. */
  expiresAt: number;
}

export interface QueuedEvent extends NewQueuedEvent {
  attempts: number;
  lastError: string | null;
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
  /**
   * The send this report is about (the verification's `sends` when the message was queued). When given, the
   * update applies only while the verification is still on that send, and never moves its delivery status
   * back (`queued` < `sent` < `delivered`/`undelivered`/`failed`): a late `sent` after a receipt's `delivered`,
   * or a receipt for a message a resend replaced, changes nothing.
   */
  send?: number;
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

export interface SlidingCounterResult {
  allowed: boolean;
  /** Estimated count over the sliding window after this hit (unchanged when refused; fractional). */
  count: number;
  /** When refused: ms until a hit of the same cost would be admitted. 0 when allowed. */
  retryAfterMs: number;
}

export interface VersionedRecord<T> {
  value: T;
  version: number;
}
