import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database, { type Database as Db } from 'better-sqlite3';
import { constantTimeEqual } from '../../core/codes.js';
import {
  decideSend,
  destinationExpiresAt,
  isEmptyRule,
  NO_DESTINATION_STATE,
  refundSend,
  restartCooldown,
  sendRefusal,
  type DestinationState,
  type SendAdmission,
  type SendRule,
} from '../../core/destination-sends.js';
import { isVerificationId, newId } from '../../core/ids.js';
import { decideSliding, windowStartOf } from '../../core/sliding-window.js';
import { settingsFromStored } from '../../core/settings.js';
import {
  attemptsCarriedFrom,
  decideCancel,
  decideCheck,
  decideResend,
  isExpired,
  type ResendPolicy,
  type VerificationRecord,
} from '../../core/verification.js';
import { invalid, OtpdError } from '../../errors.js';
import type {
  ApiKeyRecord,
  AppRecord,
  AuditEntry,
  AuditFilters,
  AuditPage,
  NewAuditEntry,
  NewQueuedEvent,
  QueuedEvent,
  RecordPage,
  CheckResult,
  CounterResult,
  CreateResult,
  DeliveryUpdate,
  IdempotencyBegin,
  ResendResult,
  SlidingCounterResult,
  Store,
  StoredResponse,
  TransitionResult,
  VersionedRecord,
} from '../store.js';
import { deliveryUpdateApplies } from '../delivery-order.js';
import type { OutboxLease, OutboxMessage } from '../outbox.js';
import { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
import { GroupCommit } from './group-commit.js';
import { migrate } from './migrate.js';

/**
 * A verification row as better-sqlite3 returns it in raw mode: the columns of VERIFICATION_COLUMNS, in that
 * order. Raw rows skip building an object keyed by column name, which costs as much as the lookup itself.
 */
type VerificationRow = [
  id: string,
  appId: string,
  to: string,
  channel: string,
  status: string,
  codeHash: string,
  codeKid: string,
  codeLength: number,
  attempts: number,
  maxAttempts: number,
  sends: number,
  locale: string | null,
  metadata: string | null,
  expiresAt: number,
  createdAt: number,
  updatedAt: number,
  lastSentAt: number,
  deliveryStatus: string,
  deliveryProvider: string | null,
  providerMessageId: string | null,
  failureReason: string | null,
];

interface AppRow {
  id: string;
  name: string;
  settings: string;
  created_at: number;
  updated_at: number;
}

interface ApiKeyRow {
  id: string;
  app_id: string;
  hash: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

function toVerification(row: VerificationRow): VerificationRecord {
  return {
    id: row[0],
    appId: row[1],
    to: row[2],
    channel: row[3] as VerificationRecord['channel'],
    status: row[4] as VerificationRecord['status'],
    codeHash: row[5],
    codeKid: row[6],
    codeLength: row[7],
    attempts: row[8],
    maxAttempts: row[9],
    sends: row[10],
    locale: row[11],
    metadata: row[12] === null ? null : (JSON.parse(row[12]) as Record<string, unknown>),
    expiresAt: row[13],
    createdAt: row[14],
    updatedAt: row[15],
    lastSentAt: row[16],
    deliveryStatus: row[17] as VerificationRecord['deliveryStatus'],
    deliveryProvider: row[18],
    providerMessageId: row[19],
    failureReason: row[20],
  };
}

/** The values of VERIFICATION_COLUMNS, in order (positional parameters bind faster than named ones). */
function verificationValues(v: VerificationRecord): VerificationRow {
  return [
    v.id,
    v.appId,
    v.to,
    v.channel,
    v.status,
    v.codeHash,
    v.codeKid,
    v.codeLength,
    v.attempts,
    v.maxAttempts,
    v.sends,
    v.locale,
    v.metadata === null ? null : JSON.stringify(v.metadata),
    v.expiresAt,
    v.createdAt,
    v.updatedAt,
    v.lastSentAt,
    v.deliveryStatus,
    v.deliveryProvider,
    v.providerMessageId,
    v.failureReason,
  ];
}

/** A `destinations` row in raw mode: cooldown_until, window_start, sends, previous_sends, expires_at, pending_id. */
type DestinationRow = [cooldownUntil: number, windowStart: number, sends: number, previousSends: number, expiresAt: number, pendingId: string | null];

function destinationState(row: DestinationRow): DestinationState {
  return { cooldownUntil: row[0], sends: { windowStart: row[1], current: row[2], previous: row[3] } };
}

function toApp(row: AppRow): AppRecord {
  return { id: row.id, name: row.name, settings: settingsFromStored(JSON.parse(row.settings) as Record<string, unknown>), createdAt: row.created_at, updatedAt: row.updated_at };
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return { id: row.id, appId: row.app_id, hash: row.hash, prefix: row.prefix, createdAt: row.created_at, revokedAt: row.revoked_at };
}

const VERIFICATION_COLUMNS =
  'id, app_id, to_address, channel, status, code_hash, code_kid, code_length, attempts, max_attempts, sends, locale, metadata, expires_at, created_at, updated_at, last_sent_at, delivery_status, delivery_provider, provider_message_id, failure_reason';

const OUTBOX_COLUMNS = 'reference, id, app_id, payload, send, due_at, expires_at, tries, last_error';

/**
 * A due outbox row in raw mode: the columns of OUTBOX_COLUMNS, in order, then the status and sends of the
 * verification whose id is the reference and whose app is the message's (both null when there is none).
 */
type DueOutboxRow = [
  reference: string,
  id: string,
  appId: string,
  payload: string,
  send: number,
  dueAt: number,
  expiresAt: number,
  tries: number,
  lastError: string | null,
  status: string | null,
  sends: number | null,
];

/** Every statement, prepared once. */
function prepare(db: Db) {
  return {
    insertApp: db.prepare('INSERT INTO apps (id, name, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
    getApp: db.prepare<[string], AppRow>('SELECT * FROM apps WHERE id = ?'),
    getAppByName: db.prepare<[string], AppRow>('SELECT * FROM apps WHERE name = ?'),
    listApps: db.prepare<[], AppRow>('SELECT * FROM apps ORDER BY name'),
    updateApp: db.prepare('UPDATE apps SET name = ?, settings = ?, updated_at = ? WHERE id = ?'),
    deleteApp: db.prepare('DELETE FROM apps WHERE id = ?'),
    insertApiKey: db.prepare('INSERT INTO api_keys (id, app_id, hash, prefix, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)'),
    getApiKeyByHash: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE hash = ?'),
    listApiKeys: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE app_id = ? ORDER BY id'),
    revokeApiKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),

    insertVerification: db.prepare<VerificationRow>(`INSERT INTO verifications (${VERIFICATION_COLUMNS}) VALUES (${VERIFICATION_COLUMNS.split(', ').map(() => '?').join(', ')})`),
    getVerification: db.prepare<[string, string], VerificationRow>(`SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE id = ? AND app_id = ?`).raw(true),
    updateState: db.prepare('UPDATE verifications SET status = @status, attempts = @attempts, updated_at = @updated_at WHERE id = @id'),
    // Without `status`: fewer columns to bind and compare for a wrong code, the most frequent update.
    updateAttempts: db.prepare('UPDATE verifications SET attempts = ?, updated_at = ? WHERE id = ?'),
    updateResend: db.prepare(
      'UPDATE verifications SET code_hash = @code_hash, code_kid = @code_kid, sends = @sends, expires_at = @expires_at, last_sent_at = @last_sent_at, updated_at = @updated_at, delivery_status = @delivery_status, provider_message_id = NULL, failure_reason = NULL WHERE id = @id',
    ),
    updateDelivery: db.prepare(
      'UPDATE verifications SET status = @status, delivery_status = @delivery_status, delivery_provider = @delivery_provider, provider_message_id = @provider_message_id, failure_reason = @failure_reason, updated_at = @updated_at WHERE id = @id',
    ),
    updateDeliveryOnly: db.prepare(
      'UPDATE verifications SET delivery_status = ?, delivery_provider = ?, provider_message_id = ?, failure_reason = ?, updated_at = ? WHERE id = ?',
    ),
    purgeVerifications: db.prepare('DELETE FROM verifications WHERE expires_at < ?'),

    getIdempotency: db.prepare<[string, string, number], { fingerprint: string; response: string | null }>(
      'SELECT fingerprint, response FROM idempotency WHERE scope = ? AND key = ? AND expires_at > ?',
    ),
    putIdempotency: db.prepare('INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, response, expires_at) VALUES (?, ?, ?, NULL, ?)'),
    completeIdempotency: db.prepare('UPDATE idempotency SET response = ?, expires_at = ? WHERE scope = ? AND key = ?'),
    deleteIdempotency: db.prepare('DELETE FROM idempotency WHERE scope = ? AND key = ?'),
    purgeIdempotency: db.prepare('DELETE FROM idempotency WHERE expires_at <= ?'),

    getDestination: db
      .prepare<[string, string], DestinationRow>('SELECT cooldown_until, window_start, sends, previous_sends, expires_at, pending_id FROM destinations WHERE app_id = ? AND to_address = ?')
      .raw(true),
    // `pending_id`: the verification a create made; null from a send's rules alone, which keep the pointer.
    putDestination: db.prepare(
      'INSERT INTO destinations (app_id, to_address, cooldown_until, window_start, sends, previous_sends, expires_at, pending_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, to_address) DO UPDATE SET cooldown_until = excluded.cooldown_until, window_start = excluded.window_start, sends = excluded.sends, previous_sends = excluded.previous_sends, expires_at = excluded.expires_at, pending_id = coalesce(excluded.pending_id, pending_id)',
    ),
    // A row goes once its rules are over, unless its pointer still names a live pending verification: a
    // resend extends a verification past the expiry its create gave the row.
    purgeDestinations: db.prepare(
      "DELETE FROM destinations WHERE expires_at <= ? AND (pending_id IS NULL OR NOT EXISTS (SELECT 1 FROM verifications v WHERE v.id = destinations.pending_id AND v.status = 'pending' AND v.expires_at > ?))",
    ),
    eraseDestinationState: db.prepare('DELETE FROM destinations WHERE app_id = ? AND to_address = ?'),

    getCounter: db.prepare<[string], { window_start: number; count: number }>('SELECT window_start, count FROM counters WHERE key = ?'),
    putCounter: db.prepare('INSERT OR REPLACE INTO counters (key, window_start, count, expires_at) VALUES (?, ?, ?, ?)'),
    purgeCounters: db.prepare('DELETE FROM counters WHERE expires_at <= ?'),

    claim: db.prepare('INSERT INTO claims (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?'),
    purgeClaims: db.prepare('DELETE FROM claims WHERE expires_at <= ?'),

    getRecord: db.prepare<[string, string, number], { value: string; version: number }>(
      'SELECT value, version FROM records WHERE namespace = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)',
    ),
    getRecordAny: db.prepare<[string, string], { version: number; expires_at: number | null }>('SELECT version, expires_at FROM records WHERE namespace = ? AND id = ?'),
    putRecord: db.prepare('INSERT OR REPLACE INTO records (namespace, id, value, version, expires_at) VALUES (?, ?, ?, ?, ?)'),
    // Create-if-absent in one statement (a claimed cooldown, a first counter): an expired record counts as
    // absent and is replaced, as version 1 like a new one.
    insertRecordIfAbsent: db.prepare(
      'INSERT INTO records (namespace, id, value, version, expires_at) VALUES (?, ?, ?, 1, ?) ON CONFLICT (namespace, id) DO UPDATE SET value = excluded.value, version = 1, expires_at = excluded.expires_at WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?',
    ),
    deleteRecord: db.prepare('DELETE FROM records WHERE namespace = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)'),
    purgeRecords: db.prepare('DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    listRecords: db.prepare<[string, string, number, number], { id: string; value: string; version: number; expires_at: number | null }>(
      'SELECT id, value, version, expires_at FROM records WHERE namespace = ? AND id > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id LIMIT ?',
    ),

    purgeVerificationsOfApp: db.prepare('DELETE FROM verifications WHERE expires_at < ? AND app_id = ?'),
    scanVerifications: db.prepare<[string, number], { id: string; app_id: string; to_address: string }>('SELECT id, app_id, to_address FROM verifications WHERE id > ? ORDER BY id LIMIT ?'),
    eraseVerification: db.prepare('DELETE FROM verifications WHERE id = ? AND app_id = ? AND to_address = ?'),

    insertAudit: db.prepare(
      'INSERT INTO audit (app_id, id, at, event, resource, key_id, ip, user_agent, request_id, destination_hash, destination_masked, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    listAudit: db.prepare<Record<string, unknown>, AuditRow>(
      `SELECT * FROM audit WHERE app_id = @app_id AND id < @before AND id >= @after
         AND (@event IS NULL OR event = @event) AND (@resource IS NULL OR resource = @resource) AND (@destination_hash IS NULL OR destination_hash = @destination_hash)
         AND id >= coalesce((SELECT id FROM audit WHERE app_id = @app_id AND id < @before AND id >= @after ORDER BY id DESC LIMIT 1 OFFSET @budget - 1), '')
       ORDER BY id DESC LIMIT @limit`,
    ),
    auditBoundary: db.prepare<Record<string, unknown>, { id: string }>(
      'SELECT id FROM audit WHERE app_id = @app_id AND id < @before AND id >= @after ORDER BY id DESC LIMIT 1 OFFSET @budget - 1',
    ),
    deleteAudit: db.prepare('DELETE FROM audit WHERE app_id = ? AND id = ?'),
    purgeAudit: db.prepare('DELETE FROM audit WHERE app_id = ? AND id < ?'),

    insertEvent: db.prepare('INSERT OR IGNORE INTO events (id, app_id, type, payload, attempts, due_at, expires_at, last_error) VALUES (?, ?, ?, ?, 0, ?, ?, NULL)'),
    dueEvents: db.prepare<[number, number], EventRow>('SELECT * FROM events WHERE due_at <= ? ORDER BY due_at LIMIT ?'),
    leaseEvent: db.prepare('UPDATE events SET due_at = ?, attempts = attempts + 1 WHERE id = ?'),
    deleteEvent: db.prepare('DELETE FROM events WHERE id = ?'),
    retryEvent: db.prepare('UPDATE events SET due_at = ?, last_error = ? WHERE id = ?'),
    purgeEvents: db.prepare('DELETE FROM events WHERE expires_at <= ?'),

    putOutbox: db.prepare(
      'INSERT OR REPLACE INTO outbox (reference, id, app_id, payload, send, due_at, expires_at, tries, last_error, lease_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)',
    ),
    anyDueOutbox: db.prepare<[number], { reference: string }>('SELECT reference FROM outbox WHERE due_at <= ? LIMIT 1'),
    // The verification is joined on (id, app_id) as `getVerification` reads it; a LEFT JOIN keeps the outbox
    // the outer loop (its due index), one primary-key lookup per row.
    dueOutbox: db
      .prepare<[number, number], DueOutboxRow>(
        `SELECT ${OUTBOX_COLUMNS.split(', ').map((column) => 'o.' + column).join(', ')}, v.status, v.sends
           FROM outbox o LEFT JOIN verifications v ON v.id = o.reference AND v.app_id = o.app_id
          WHERE o.due_at <= ? ORDER BY o.due_at LIMIT ?`,
      )
      .raw(true),
    leaseOutbox: db.prepare('UPDATE outbox SET due_at = ?, lease_token = ?, tries = tries + 1 WHERE reference = ?'),
    renewOutbox: db.prepare('UPDATE outbox SET due_at = ? WHERE reference = ? AND id = ? AND lease_token = ?'),
    rescheduleOutbox: db.prepare('UPDATE outbox SET due_at = ?, last_error = ?, lease_token = NULL WHERE reference = ? AND id = ? AND lease_token = ?'),
    completeOutbox: db.prepare('DELETE FROM outbox WHERE reference = ? AND id = ? AND lease_token = ?'),
    deleteOutboxOf: db.prepare('DELETE FROM outbox WHERE reference = ?'),
    purgeOutbox: db.prepare('DELETE FROM outbox WHERE expires_at < ?'),
  };
}


/**
 * The parameters of `putOutbox`, in order. A message written already leased (`OutboxMessage.lease`) is
 * stored as `claimOutbox` leaves a claimed one: due at the lease's end, one try, the holder's token.
 */
function outboxValues(message: OutboxMessage, send = message.send): [string, string, string, string, number, number, number, number, string | null] {
  const { lease } = message;
  return [message.reference, message.id, message.appId, message.payload, send, lease ? lease.until : message.dueAt, message.expiresAt, lease ? 1 : 0, lease ? lease.token : null];
}

interface AuditRow {
  app_id: string;
  id: string;
  at: number;
  event: string;
  resource: string | null;
  key_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  destination_hash: string | null;
  destination_masked: string | null;
  details: string | null;
}

interface EventRow {
  id: string;
  app_id: string;
  type: string;
  payload: string;
  attempts: number;
  due_at: number;
  expires_at: number;
  last_error: string | null;
}

function toAuditEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    event: row.event,
    resource: row.resource,
    keyId: row.key_id,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    destinationHash: row.destination_hash,
    destinationMasked: row.destination_masked,
    details: row.details === null ? null : (JSON.parse(row.details) as AuditEntry['details']),
  };
}

function toQueuedEvent(row: EventRow): QueuedEvent {
  return { id: row.id, appId: row.app_id, type: row.type, payload: row.payload, attempts: row.attempts, dueAt: row.due_at, expiresAt: row.expires_at, lastError: row.last_error };
}

const AUDIT_ID = /^au_[0-9a-z]{26}$/;
/** Entries one listing call examines at most when filters match few of them (docs/audit-and-events.md). */
export const AUDIT_SCAN_BUDGET = 10_000;
/** Rows one erasure step reads; between steps the event loop and other writers run. */
const ERASE_CHUNK = 5_000;

/** `au_` and the 10 time characters of `at`: sorts before every audit id of that millisecond and after every earlier one. */
function auditTimeBound(at: number): string {
  return newId('au', Math.max(0, at)).slice(0, 13);
}

/** Yields to the event loop (between chunks of a long scan). */
function pause(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The embedded default: one SQLite file in WAL mode. Several processes may share the file (`--workers`):
 * every write goes through `BEGIN IMMEDIATE`, which serialises writers across processes, and each decision
 * reads and writes inside that one transaction.
 */
export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  private readonly statements: ReturnType<typeof prepare>;
  private readonly group: GroupCommit;
  /** Last audit id made here per app: ids of one millisecond count up from it, so an app's entries keep their order. */
  private readonly lastAuditIds = new Map<string, string>();

  /** Checkpoints the WAL on a thread of its own (file databases opened with `checkpoint` only). */
  readonly checkpointer: Checkpointer | undefined;

  constructor(
    private readonly db: Db,
    checkpoint?: CheckpointerOptions,
  ) {
    this.statements = prepare(db);
    this.group = new GroupCommit(db);
    if (checkpoint && !db.memory) this.checkpointer = new Checkpointer(db, checkpoint);
  }

  private write<T>(work: () => T): Promise<T> {
    return this.group.run(work);
  }

  /** A write whose `work` changes the database with one statement at most, its last (GroupCommit `single`). */
  private writeOne<T>(work: () => T): Promise<T> {
    return this.group.run(work, true);
  }

  private read<T>(work: () => T): Promise<T> {
    try {
      return Promise.resolve(this.group.read(work));
    } catch (error) {
      return Promise.reject(new OtpdError('STORE_UNAVAILABLE', 'the database could not be read', { cause: error }));
    }
  }

  async ping(): Promise<void> {
    await this.read(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    // The thread first, while writes still commit as usual; then flush and close in one go, so no write
    // starts between them. The thread's connection is closed by then, so when no other process has the file
    // open this one is its last, whose close copies the rest of the WAL into the file and deletes it.
    await this.checkpointer?.stop();
    this.group.close();
    this.db.close();
  }

  // --- apps and API keys ---------------------------------------------------------------------------

  insertApp(app: AppRecord): Promise<void> {
    return this.writeOne(() => {
      try {
        this.statements.insertApp.run(app.id, app.name, JSON.stringify(app.settings), app.createdAt, app.updatedAt);
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new OtpdError('APP_EXISTS', `an app named "${app.name}" already exists`);
        throw error;
      }
    });
  }

  getApp(id: string): Promise<AppRecord | undefined> {
    return this.read(() => {
      const row = this.statements.getApp.get(id);
      return row && toApp(row);
    });
  }

  getAppByName(name: string): Promise<AppRecord | undefined> {
    return this.read(() => {
      const row = this.statements.getAppByName.get(name);
      return row && toApp(row);
    });
  }

  listApps(): Promise<AppRecord[]> {
    return this.read(() => this.statements.listApps.all().map(toApp));
  }

  updateApp(app: AppRecord): Promise<void> {
    return this.writeOne(() => {
      try {
        this.statements.updateApp.run(app.name, JSON.stringify(app.settings), app.updatedAt, app.id);
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new OtpdError('APP_EXISTS', `an app named "${app.name}" already exists`);
        throw error;
      }
    });
  }

  deleteApp(id: string): Promise<boolean> {
    return this.writeOne(() => this.statements.deleteApp.run(id).changes > 0);
  }

  insertApiKey(key: ApiKeyRecord): Promise<void> {
    return this.writeOne(() => {
      this.statements.insertApiKey.run(key.id, key.appId, key.hash, key.prefix, key.createdAt, key.revokedAt);
    });
  }

  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.read(() => {
      const row = this.statements.getApiKeyByHash.get(hash);
      return row && toApiKey(row);
    });
  }

  listApiKeys(appId: string): Promise<ApiKeyRecord[]> {
    return this.read(() => this.statements.listApiKeys.all(appId).map(toApiKey));
  }

  revokeApiKey(id: string, now: number): Promise<boolean> {
    return this.writeOne(() => this.statements.revokeApiKey.run(now, id).changes > 0);
  }

  // --- verifications -------------------------------------------------------------------------------

  createVerification(record: VerificationRecord, now: number, outbox?: OutboxMessage, rule?: SendRule): Promise<CreateResult> {
    return this.write(() => {
      const destination = this.statements.getDestination.get(record.appId, record.to);
      let state = destination ? destinationState(destination) : NO_DESTINATION_STATE;
      let rulesExpireAt = 0;
      if (rule && !isEmptyRule(rule)) {
        const decision = decideSend(state, rule, now);
        // Nothing is written yet: the refusal leaves the store as it was.
        if (!decision.admission.allowed) throw sendRefusal(rule, decision.admission);
        state = decision.state;
        rulesExpireAt = destinationExpiresAt(state, rule);
      }
      const previous = this.pendingOf(record.appId, destination);
      const carried = attemptsCarriedFrom(previous, now);
      if (previous) {
        // It stops being pending either way: canceled when superseded, expired when stale.
        const status = isExpired(previous, now) ? 'expired' : 'canceled';
        this.statements.updateState.run({ id: previous.id, status, attempts: previous.attempts, updated_at: now });
      }
      const stored = { ...record, attempts: Math.max(record.attempts, carried) };
      this.statements.insertVerification.run(...verificationValues(stored));
      // The superseded code no longer works: its waiting message goes (decisions 3).
      if (previous) this.statements.deleteOutboxOf.run(previous.id);
      if (outbox) this.statements.putOutbox.run(...outboxValues(outbox, stored.sends));
      // The row lives at least as long as the new verification, so the next create finds it to supersede.
      this.putDestination(record.appId, record.to, state, Math.max(rulesExpireAt, stored.expiresAt), destination, stored.id);
      const superseded = previous && !isExpired(previous, now) ? previous.id : undefined;
      return superseded ? { verification: stored, supersededId: superseded } : { verification: stored };
    });
  }

  getVerification(appId: string, id: string): Promise<VerificationRecord | undefined> {
    return this.read(() => {
      const row = this.statements.getVerification.get(id, appId);
      return row && toVerification(row);
    });
  }

  findPendingVerification(appId: string, to: string, now: number): Promise<VerificationRecord | undefined> {
    return this.read(() => {
      const pending = this.pendingOf(appId, this.statements.getDestination.get(appId, to));
      return pending && !isExpired(pending, now) ? pending : undefined;
    });
  }

  /** The verification a destination's row points to, if it is still pending (expired or not). */
  private pendingOf(appId: string, destination: DestinationRow | undefined): VerificationRecord | undefined {
    const id = destination?.[5];
    if (!id) return undefined;
    const row = this.statements.getVerification.get(id, appId);
    const record = row && toVerification(row);
    return record?.status === 'pending' ? record : undefined;
  }

  checkVerification(appId: string, id: string, candidateHashes: Record<string, string>, now: number): Promise<CheckResult | undefined> {
    return this.writeOne(() => {
      const row = this.statements.getVerification.get(id, appId);
      if (!row) return undefined;
      const record = toVerification(row);
      const candidate = candidateHashes[record.codeKid];
      const matches = candidate !== undefined && constantTimeEqual(candidate, record.codeHash);
      const decision = decideCheck(record, matches, now);
      const next = { ...record, ...decision.changes };
      if (decision.changes.updatedAt !== undefined) {
        if (next.status === record.status) this.statements.updateAttempts.run(next.attempts, next.updatedAt, id);
        else this.statements.updateState.run({ id, status: next.status, attempts: next.attempts, updated_at: next.updatedAt });
      }
      return { outcome: decision.outcome, verification: next };
    });
  }

  resendVerification(appId: string, id: string, newCode: { codeHash: string; codeKid: string }, policy: ResendPolicy, now: number, outbox?: OutboxMessage): Promise<ResendResult | undefined> {
    return this.write((): ResendResult | undefined => {
      const row = this.statements.getVerification.get(id, appId);
      if (!row) return undefined;
      const record = toVerification(row);
      const decision = decideResend(record, policy, now);
      if (!decision.ok) {
        const next = { ...record, ...decision.changes };
        if (decision.changes.status) this.statements.updateState.run({ id, status: next.status, attempts: next.attempts, updated_at: next.updatedAt });
        return decision.retryAfterMs === undefined
          ? { ok: false, reason: decision.reason, verification: next }
          : { ok: false, reason: decision.reason, retryAfterMs: decision.retryAfterMs, verification: next };
      }
      const next: VerificationRecord = { ...record, ...decision.changes, ...newCode, providerMessageId: null, failureReason: null };
      this.statements.updateResend.run({
        id,
        code_hash: next.codeHash,
        code_kid: next.codeKid,
        sends: next.sends,
        expires_at: next.expiresAt,
        last_sent_at: next.lastSentAt,
        updated_at: next.updatedAt,
        delivery_status: next.deliveryStatus,
      });
      if (outbox) this.statements.putOutbox.run(...outboxValues(outbox, next.sends));
      return { ok: true, verification: next };
    });
  }

  cancelVerification(appId: string, id: string, now: number): Promise<TransitionResult | undefined> {
    return this.writeOne(() => {
      const row = this.statements.getVerification.get(id, appId);
      if (!row) return undefined;
      const record = toVerification(row);
      const decision = decideCancel(record, now);
      const next = { ...record, ...decision.changes };
      if (decision.changes.status) this.statements.updateState.run({ id, status: next.status, attempts: next.attempts, updated_at: next.updatedAt });
      return { ok: decision.ok, verification: next };
    });
  }

  recordDelivery(appId: string, id: string, update: DeliveryUpdate, now: number, sent?: OutboxLease): Promise<VerificationRecord | undefined> {
    const work = (): VerificationRecord | undefined => {
      if (sent) this.statements.completeOutbox.run(sent.reference, sent.id, sent.leaseToken);
      const row = this.statements.getVerification.get(id, appId);
      if (!row) return undefined;
      const record = toVerification(row);
      if (!deliveryUpdateApplies(record, update)) return record;
      const next: VerificationRecord = {
        ...record,
        status: update.failVerification && record.status === 'pending' ? 'failed' : record.status,
        deliveryStatus: update.status,
        deliveryProvider: update.provider === undefined ? record.deliveryProvider : update.provider,
        providerMessageId: update.providerMessageId === undefined ? record.providerMessageId : update.providerMessageId,
        failureReason: update.failureReason === undefined ? record.failureReason : update.failureReason,
        updatedAt: now,
      };
      if (next.status === record.status) {
        this.statements.updateDeliveryOnly.run(next.deliveryStatus, next.deliveryProvider, next.providerMessageId, next.failureReason, now, id);
      } else {
        this.statements.updateDelivery.run({
          id,
          status: next.status,
          delivery_status: next.deliveryStatus,
          delivery_provider: next.deliveryProvider,
          provider_message_id: next.providerMessageId,
          failure_reason: next.failureReason,
          updated_at: now,
        });
      }
      return next;
    };
    // With a wipe it may be two changes: the write then gets its savepoint, so both land or neither does.
    return sent ? this.write(work) : this.writeOne(work);
  }

  purgeVerifications(olderThan: number, appId?: string): Promise<number> {
    return this.write(() => {
      const now = Date.now();
      this.statements.purgeIdempotency.run(now);
      this.statements.purgeCounters.run(now);
      this.statements.purgeDestinations.run(now, now);
      this.statements.purgeClaims.run(now);
      this.statements.purgeRecords.run(now);
      this.statements.purgeEvents.run(now);
      this.statements.purgeOutbox.run(olderThan);
      if (appId !== undefined) return this.statements.purgeVerificationsOfApp.run(olderThan, appId).changes;
      return this.statements.purgeVerifications.run(olderThan).changes;
    });
  }

  /**
   * Reads the table in primary-key chunks (reads never block writers in WAL mode) and deletes the matches
   * of each chunk in one short write: there is no index on `to_address`, and a
   * single scanning DELETE would hold the write lock for the whole table.
   */
  async eraseDestination(appId: string, to: string): Promise<number> {
    let after = '';
    let erased = 0;
    for (;;) {
      const rows = await this.read(() => this.statements.scanVerifications.all(after, ERASE_CHUNK));
      const matches = rows.filter((row) => row.app_id === appId && row.to_address === to);
      if (matches.length > 0) {
        erased += await this.write(() => matches.reduce((sum, row) => sum + this.statements.eraseVerification.run(row.id, appId, to).changes, 0));
      }
      if (rows.length < ERASE_CHUNK) break;
      after = rows[rows.length - 1]!.id;
      await pause();
    }
    // The row holds the number itself; its counts go with it.
    await this.writeOne(() => this.statements.eraseDestinationState.run(appId, to));
    return erased;
  }

  // --- destinations --------------------------------------------------------------------------------

  admitSend(appId: string, to: string, rule: SendRule, now: number): Promise<SendAdmission> {
    return this.writeOne(() => this.decideDestination(appId, to, rule, now));
  }

  /** Inside a write: decides one send and, when admitted, stores the destination's new state (one statement, the last). */
  private decideDestination(appId: string, to: string, rule: SendRule, now: number): SendAdmission {
    const row = this.statements.getDestination.get(appId, to);
    const { admission, state } = decideSend(row ? destinationState(row) : NO_DESTINATION_STATE, rule, now);
    if (admission.allowed) this.putDestination(appId, to, state, destinationExpiresAt(state, rule), row);
    return admission;
  }

  refundSend(appId: string, to: string, rule: SendRule, claimedUntil: number, now: number): Promise<void> {
    return this.writeOne(() => {
      const row = this.statements.getDestination.get(appId, to);
      if (!row) return;
      const state = refundSend(destinationState(row), rule, claimedUntil, now);
      this.putDestination(appId, to, state, destinationExpiresAt(state, rule), row);
    });
  }

  restartCooldown(appId: string, to: string, cooldownMs: number, now: number): Promise<void> {
    return this.writeOne(() => {
      const row = this.statements.getDestination.get(appId, to);
      const state = restartCooldown(row ? destinationState(row) : NO_DESTINATION_STATE, cooldownMs, now);
      this.putDestination(appId, to, state, state.cooldownUntil, row);
    });
  }

  /** Keeps the row at least as long as before: a write under one rule must not drop what another still counts. */
  private putDestination(appId: string, to: string, state: DestinationState, expiresAt: number, before: DestinationRow | undefined, pendingId: string | null = null): void {
    const { sends } = state;
    this.statements.putDestination.run(appId, to, state.cooldownUntil, sends.windowStart, sends.current, sends.previous, Math.max(expiresAt, before ? before[4] : 0), pendingId);
  }

  // --- idempotency ---------------------------------------------------------------------------------

  beginIdempotent(scope: string, key: string, fingerprint: string, ttlMs: number, now: number): Promise<IdempotencyBegin> {
    return this.writeOne((): IdempotencyBegin => {
      const row = this.statements.getIdempotency.get(scope, key, now);
      if (!row) {
        this.statements.putIdempotency.run(scope, key, fingerprint, now + ttlMs);
        return { state: 'new' };
      }
      if (!constantTimeEqual(row.fingerprint, fingerprint)) return { state: 'mismatch' };
      if (row.response === null) return { state: 'in_progress' };
      return { state: 'done', response: JSON.parse(row.response) as StoredResponse };
    });
  }

  completeIdempotent(scope: string, key: string, response: StoredResponse, ttlMs: number, now: number): Promise<void> {
    return this.writeOne(() => {
      this.statements.completeIdempotency.run(JSON.stringify(response), now + ttlMs, scope, key);
    });
  }

  abandonIdempotent(scope: string, key: string): Promise<void> {
    return this.writeOne(() => {
      this.statements.deleteIdempotency.run(scope, key);
    });
  }

  // --- primitives ----------------------------------------------------------------------------------

  hit(key: string, limit: number, windowMs: number, now: number, cost = 1): Promise<CounterResult> {
    return this.writeOne(() => {
      const windowStart = Math.floor(now / windowMs) * windowMs;
      const resetMs = windowStart + windowMs - now;
      const row = this.statements.getCounter.get(key);
      const count = row && row.window_start === windowStart ? row.count : 0;
      if (count + cost > limit) return { allowed: false, count, resetMs };
      this.statements.putCounter.run(key, windowStart, count + cost, windowStart + windowMs);
      return { allowed: true, count: count + cost, resetMs };
    });
  }

  /**
   * One `counters` row per (key, fixed window), kept for two windows: the current window's row and the
   * previous one's are all the sliding estimate needs. The `~sliding:` prefix keeps them apart from `hit`'s.
   */
  slidingHit(key: string, limit: number, windowMs: number, now: number, cost = 1): Promise<SlidingCounterResult> {
    return this.writeOne(() => {
      const start = windowStartOf(now, windowMs);
      const rowKey = (windowStart: number) => `~sliding:${windowStart}:${key}`;
      const current = this.statements.getCounter.get(rowKey(start));
      const previous = this.statements.getCounter.get(rowKey(start - windowMs));
      const stored = {
        windowStart: start,
        current: current?.window_start === start ? current.count : 0,
        previous: previous?.window_start === start - windowMs ? previous.count : 0,
      };
      const decision = decideSliding(stored, limit, windowMs, now, cost);
      if (decision.allowed && decision.state.current !== stored.current) {
        this.statements.putCounter.run(rowKey(start), start, decision.state.current, start + 2 * windowMs);
      }
      return { allowed: decision.allowed, count: decision.count, retryAfterMs: decision.retryAfterMs };
    });
  }

  claimOnce(key: string, ttlMs: number, now: number): Promise<boolean> {
    return this.writeOne(() => this.statements.claim.run(key, now + ttlMs, now).changes > 0);
  }

  getRecord<T>(namespace: string, id: string, now: number): Promise<VersionedRecord<T> | undefined> {
    return this.read(() => {
      const row = this.statements.getRecord.get(namespace, id, now);
      return row && { value: JSON.parse(row.value) as T, version: row.version };
    });
  }

  putRecord<T>(namespace: string, id: string, value: T, options: { ifVersion?: number | null; ttlMs?: number }, now: number): Promise<number | undefined> {
    const expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    if (options.ifVersion === null) {
      return this.writeOne(() => (this.statements.insertRecordIfAbsent.run(namespace, id, JSON.stringify(value), expiresAt, now).changes > 0 ? 1 : undefined));
    }
    return this.writeOne(() => {
      const existing = this.statements.getRecordAny.get(namespace, id);
      const live = existing && (existing.expires_at === null || existing.expires_at > now) ? existing : undefined;
      if (typeof options.ifVersion === 'number' && live?.version !== options.ifVersion) return undefined;
      const version = (live?.version ?? 0) + 1;
      this.statements.putRecord.run(namespace, id, JSON.stringify(value), version, expiresAt);
      return version;
    });
  }

  deleteRecord(namespace: string, id: string): Promise<boolean> {
    return this.writeOne(() => this.statements.deleteRecord.run(namespace, id, Date.now()).changes > 0);
  }

  /** The cursor is the last id returned: records come in id order. */
  listRecords<T>(namespace: string, cursor: string | undefined, limit: number, now: number): Promise<RecordPage<T>> {
    return this.read(() => {
      const rows = this.statements.listRecords.all(namespace, cursor ?? '', now, limit);
      return {
        items: rows.map((row) => ({ id: row.id, value: JSON.parse(row.value) as T, version: row.version, expiresAt: row.expires_at })),
        nextCursor: rows.length === limit && rows.length > 0 ? rows[rows.length - 1]!.id : undefined,
      };
    });
  }

  // --- audit log -----------------------------------------------------------------------------------

  private nextAuditId(appId: string, at: number): string {
    const last = this.lastAuditIds.get(appId) ?? '';
    let id = newId('au', at);
    if (id <= last) id = incrementId(last);
    this.lastAuditIds.set(appId, id);
    return id;
  }

  appendAudit(appId: string, entries: NewAuditEntry[]): Promise<string[]> {
    return this.write(() =>
      entries.map((entry) => {
        const id = this.nextAuditId(appId, entry.at);
        this.statements.insertAudit.run(
          appId,
          id,
          entry.at,
          entry.event,
          entry.resource,
          entry.keyId,
          entry.ip,
          entry.userAgent,
          entry.requestId,
          entry.destinationHash,
          entry.destinationMasked,
          entry.details === null ? null : JSON.stringify(entry.details),
        );
        return id;
      }),
    );
  }

  /**
   * Newest first, walking the app's primary-key range backwards. With filters, at most AUDIT_SCAN_BUDGET
   * entries are examined per call (the subquery finds the lowest id within the budget), so a filter that
   * matches nothing costs a bounded read; the cursor then continues below what was examined.
   */
  listAudit(appId: string, filters: AuditFilters, cursor: string | undefined, limit: number): Promise<AuditPage> {
    if (cursor !== undefined && !AUDIT_ID.test(cursor)) return Promise.reject(invalid('cursor', 'is not a cursor this server issued'));
    return this.read(() => {
      let before = filters.until === undefined ? 'au_~' : auditTimeBound(filters.until);
      if (cursor !== undefined && cursor < before) before = cursor;
      const after = filters.since === undefined ? '' : auditTimeBound(filters.since);
      const filtered = filters.event !== undefined || filters.resource !== undefined || filters.destinationHash !== undefined;
      const params = {
        app_id: appId,
        before,
        after,
        event: filters.event ?? null,
        resource: filters.resource ?? null,
        destination_hash: filters.destinationHash ?? null,
        budget: filtered ? AUDIT_SCAN_BUDGET : limit + 1,
        limit: limit + 1,
      };
      const rows = this.statements.listAudit.all(params);
      if (rows.length > limit) return { items: rows.slice(0, limit).map(toAuditEntry), nextCursor: rows[limit - 1]!.id };
      if (!filtered) return { items: rows.map(toAuditEntry), nextCursor: undefined };
      // Fewer matches than asked: either the range is exhausted or the scan budget ran out first.
      const boundary = this.statements.auditBoundary.get(params);
      return { items: rows.map(toAuditEntry), nextCursor: boundary?.id };
    });
  }

  deleteAudit(appId: string, ids: string[]): Promise<number> {
    return this.write(() => ids.reduce((sum, id) => sum + this.statements.deleteAudit.run(appId, id).changes, 0));
  }

  purgeAudit(appId: string, olderThan: number): Promise<number> {
    return this.write(() => this.statements.purgeAudit.run(appId, auditTimeBound(olderThan)).changes);
  }

  // --- event queue ---------------------------------------------------------------------------------

  enqueueEvents(events: NewQueuedEvent[]): Promise<void> {
    return this.write(() => {
      for (const event of events) this.statements.insertEvent.run(event.id, event.appId, event.type, event.payload, event.dueAt, event.expiresAt);
    });
  }

  claimEvents(now: number, leaseMs: number, limit: number): Promise<QueuedEvent[]> {
    return this.write(() =>
      this.statements.dueEvents.all(now, limit).map((row) => {
        this.statements.leaseEvent.run(now + leaseMs, row.id);
        return { ...toQueuedEvent(row), attempts: row.attempts + 1 };
      }),
    );
  }

  completeEvent(id: string): Promise<void> {
    return this.writeOne(() => {
      this.statements.deleteEvent.run(id);
    });
  }

  retryEvent(id: string, dueAt: number, lastError: string): Promise<void> {
    return this.writeOne(() => {
      this.statements.retryEvent.run(dueAt, lastError, id);
    });
  }

  // --- outbox --------------------------------------------------------------------------------------

  enqueueOutbox(message: OutboxMessage): Promise<void> {
    return this.writeOne(() => {
      this.statements.putOutbox.run(...outboxValues(message));
    });
  }

  /**
   * Every process polls several times a second, so an idle poll is a plain read (no write lock, no
   * transaction); only when something is due does it take the write lock, and the lease (due_at moved to
   * the lease's end) is decided inside that one transaction, so two processes never lease one message.
   * The verification's state is read in that same statement, so it is the one at the moment of the lease.
   */
  async claimOutbox(now: number, leaseMs: number, limit: number, leaseToken: string): Promise<OutboxLease[]> {
    const any = await this.read(() => this.statements.anyDueOutbox.get(now));
    if (!any) return [];
    return this.write(() =>
      this.statements.dueOutbox.all(now, limit).map(([reference, id, appId, payload, send, dueAt, expiresAt, tries, lastError, status, sends]): OutboxLease => {
        this.statements.leaseOutbox.run(now + leaseMs, leaseToken, reference);
        const lease: OutboxLease = { id, appId, reference, payload, send, dueAt, expiresAt, tries: tries + 1, lastError, leaseToken, leaseUntil: now + leaseMs };
        if (isVerificationId(reference)) lease.verification = status === null ? null : { status: status as VerificationRecord['status'], sends: sends! };
        return lease;
      }),
    );
  }

  renewOutbox(lease: OutboxLease, leaseMs: number, now: number): Promise<boolean> {
    return this.writeOne(() => this.statements.renewOutbox.run(now + leaseMs, lease.reference, lease.id, lease.leaseToken).changes > 0);
  }

  rescheduleOutbox(lease: OutboxLease, dueAt: number, lastError: string): Promise<boolean> {
    return this.writeOne(() => this.statements.rescheduleOutbox.run(dueAt, lastError, lease.reference, lease.id, lease.leaseToken).changes > 0);
  }

  completeOutbox(lease: OutboxLease): Promise<boolean> {
    return this.writeOne(() => this.statements.completeOutbox.run(lease.reference, lease.id, lease.leaseToken).changes > 0);
  }
}

const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** The next id after `id` in sort order: its random part plus one (base 32), as monotonic ULIDs do. */
function incrementId(id: string): string {
  // The last character that is not the alphabet's last goes up by one; the ones after it wrap to '0'.
  for (let i = id.length - 1; i > 2; i--) {
    const index = ID_ALPHABET.indexOf(id[i]!);
    if (index < ID_ALPHABET.length - 1) return id.slice(0, i) + ID_ALPHABET[index + 1]! + '0'.repeat(id.length - 1 - i);
  }
  throw new Error('audit id space exhausted');
}

export function openSqliteDatabase(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a commit is in the WAL before COMMIT returns, so a killed process loses nothing
  // acknowledged; only an OS crash or power cut can lose the last transactions, those since the WAL was
  // last synced, which every checkpoint does first (checkpointer.ts: about every 200 ms while writes come).
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** `checkpoint`: the checkpointer's timings (tests), or `false` for none; a file database has one by default. */
export async function openSqliteStore(options: { path: string; checkpoint?: CheckpointerOptions | false }): Promise<Store> {
  const db = openSqliteDatabase(options.path);
  migrate(db);
  return new SqliteStore(db, options.checkpoint === false ? undefined : (options.checkpoint ?? {}));
}

