import { isEmptyRule, sendAdmissionFrom, sendRefusal, type SendAdmission, type SendRule } from '../../core/destination-sends.js';
import { isVerificationId, routingTag, routingTagOfVerificationId, timeOfId } from '../../core/ids.js';
import { slidingResult } from '../../core/sliding-window.js';
import type { ResendPolicy, VerificationRecord } from '../../core/verification.js';
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
import type { OutboxLease, OutboxMessage } from '../outbox.js';
import { RedisConnection, type ConnectionOptions } from './client.js';
import {
  apiKeyFromHash,
  appDigest,
  appFromHash,
  auditFromFields,
  auditToFields,
  destinationDigest,
  encodeDestination,
  eventFromHash,
  packCode,
  pairsToObject,
  verificationFromHash,
  verificationStateFromFields,
  verificationToFields,
} from './codec.js';
import { globLiteral, groupOf, RedisKeys } from './keys.js';
import * as S from './scripts.js';

/**
 * How long a finished or expired verification stays readable after `expiresAt` (status lookups, delivery
 * reports arriving late) before Redis drops it. The SQLite store keeps rows until `purgeVerifications`;
 * here the key's own expiry does that job.
 */
export const VERIFICATION_GRACE_MS = 24 * 60 * 60 * 1000;
/** How long a waiting message outlives its `expiresAt`, so the worker still finds it and records the failure. */
export const OUTBOX_KEEP_MS = 60 * 60 * 1000;
/**
 * An index entry whose message is not there yet may belong to a create still on its way (the index is
 * written first): it is left alone this long after its message id was made before being dropped.
 */
const OUTBOX_ORPHAN_GRACE_MS = 30_000;
const OUTBOX_DEFER_MS = 1_000;
/**
 * How often a create sweeps its group's pending pointers, and how long past `expiresAt` a pointer to a
 * still-pending verification survives a sweep (CREATE_VERIFICATION). A pointer whose verification ended thus
 * goes with the group's first create once both this long has passed and a sweep is due, or with the group's
 * hash when no create comes. Until then it is harmless: whoever follows it checks the verification anyway.
 */
const POINTER_SWEEP_MS = 10 * 60 * 1000;

/** What `openStore` passes (src/store/index.ts), plus the connection's optional timeouts. */
export interface RedisStoreOptions extends ConnectionOptions {
  /** Prepended to every key (`otpd:` by default in config), so several deployments or tests share a Redis. */
  prefix: string;
  /** Same key as the services use for `routingTag()`, so the store finds a destination's slot. */
  routingKey: Buffer;
}

type Outcome = CheckResult['outcome'];

/**
 * The Redis backend of the Store contract, for running several otpd processes against one Redis or Redis
 * Cluster. Every decision is one Lua script (scripts.ts); reads are plain commands. Expiry is Redis' own:
 * every key that should go away carries a TTL, so there is nothing to purge.
 */
export class RedisStore implements Store {
  readonly backend = 'redis' as const;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly routingKey: Buffer,
  ) {}

  ping(): Promise<void> {
    return this.redis.ping();
  }

  close(): Promise<void> {
    return this.redis.close();
  }

  // --- apps and API keys ---------------------------------------------------------------------------

  async insertApp(app: AppRecord): Promise<void> {
    const inserted = await this.redis.run(S.INSERT_APP, [this.keys.app(app.id), this.keys.appNames()], [app.id, app.name, JSON.stringify(app.settings), app.createdAt, app.updatedAt]);
    if (inserted !== 1) throw new OtpdError('APP_EXISTS', `an app named "${app.name}" already exists`);
  }

  async getApp(id: string): Promise<AppRecord | undefined> {
    return appFromHash(id, await this.redis.guard(() => this.redis.commands.hgetall(this.keys.app(id))));
  }

  async getAppByName(name: string): Promise<AppRecord | undefined> {
    const id = await this.redis.guard(() => this.redis.commands.hget(this.keys.appNames(), name));
    return id === null ? undefined : this.getApp(id);
  }

  async listApps(): Promise<AppRecord[]> {
    const ids = await this.redis.guard(() => this.redis.commands.hvals(this.keys.appNames()));
    const apps = await Promise.all(ids.map((id) => this.getApp(id)));
    return apps.filter((app): app is AppRecord => app !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async updateApp(app: AppRecord): Promise<void> {
    const updated = await this.redis.run(S.UPDATE_APP, [this.keys.app(app.id), this.keys.appNames()], [app.id, app.name, JSON.stringify(app.settings), app.updatedAt]);
    if (updated !== 1) throw new OtpdError('APP_EXISTS', `an app named "${app.name}" already exists`);
  }

  async deleteApp(id: string): Promise<boolean> {
    const keys = [this.keys.app(id), this.keys.appNames(), this.keys.appApiKeys(id), this.keys.apiKeyIds()];
    return (await this.redis.run(S.DELETE_APP, keys, [id, this.keys.apiKeyStem()])) === 1;
  }

  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    await this.redis.run(S.INSERT_API_KEY, [this.keys.apiKey(key.hash), this.keys.apiKeyIds(), this.keys.appApiKeys(key.appId)], [
      key.id,
      key.appId,
      key.hash,
      key.prefix,
      key.createdAt,
      key.revokedAt === null ? '' : key.revokedAt,
    ]);
  }

  async getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return apiKeyFromHash(hash, await this.redis.guard(() => this.redis.commands.hgetall(this.keys.apiKey(hash))));
  }

  async listApiKeys(appId: string): Promise<ApiKeyRecord[]> {
    const hashes = await this.redis.guard(() => this.redis.commands.smembers(this.keys.appApiKeys(appId)));
    const keys = await Promise.all(hashes.map((hash) => this.getApiKeyByHash(hash)));
    return keys.filter((key): key is ApiKeyRecord => key !== undefined && key.appId === appId).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return (await this.redis.run(S.REVOKE_API_KEY, [this.keys.apiKeyIds()], [this.keys.apiKeyStem(), id, now])) === 1;
  }

  // --- verifications -------------------------------------------------------------------------------

  async createVerification(record: VerificationRecord, now: number, outbox?: OutboxMessage, rule?: SendRule): Promise<CreateResult> {
    const tag = routingTagOfVerificationId(record.id);
    // The pending pointer is found by (app, to) alone, so the id must carry that destination's tag; an id
    // made for another destination would put the verification where no lookup or supersede can see it.
    if (tag === undefined || tag !== routingTag(this.routingKey, record.appId, record.to)) {
      throw new OtpdError('INTERNAL', `verification id ${record.id} does not carry the routing tag of its destination`);
    }
    const group = groupOf(tag);
    const digest = destinationDigest(this.routingKey, record.appId, record.to);
    const checked = rule && !isEmptyRule(rule) ? rule : undefined;
    if (outbox) await this.indexOutbox(outbox, now);
    const reply = await this.redis.run(S.CREATE_VERIFICATION, [this.keys.verificationStem(group) + record.id, this.keys.pendingPointers(group), this.keys.destination(group, digest)], [
      this.keys.verificationStem(group),
      record.id,
      now,
      VERIFICATION_GRACE_MS,
      this.keys.outboxStem(group),
      outbox?.id ?? '',
      outbox?.payload ?? '',
      outbox?.expiresAt ?? 0,
      OUTBOX_KEEP_MS,
      digest,
      POINTER_SWEEP_MS,
      record.appId,
      checked ? checked.cooldownMs : '',
      checked?.window?.max ?? '',
      checked?.window?.windowMs ?? 0,
      ...verificationToFields(record),
    ]);
    if ((reply as unknown[]).length === 5) {
      // Refused by the destination's rules: nothing was written but the message's index entry (written first).
      if (outbox) await this.unindexOutbox(outbox);
      const [, cooldownUntil, windowStart, current, previous] = (reply as Array<number | string>).map(Number) as [number, number, number, number, number];
      const admission = sendAdmissionFrom(false, { cooldownUntil, sends: { windowStart, current, previous } }, checked!, now);
      if (!admission.allowed) throw sendRefusal(checked!, admission);
    }
    const [supersededId, attempts] = reply as [string | null, number];
    const verification = { ...record, attempts: Number(attempts) };
    return supersededId ? { verification, supersededId } : { verification };
  }

  async getVerification(appId: string, id: string): Promise<VerificationRecord | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    return verificationFromHash(id, await this.redis.guard(() => this.redis.commands.hgetall(key)), appId);
  }

  async findPendingVerification(appId: string, to: string, now: number): Promise<VerificationRecord | undefined> {
    const group = groupOf(routingTag(this.routingKey, appId, to));
    const reply = await this.redis.run(S.FIND_PENDING, [this.keys.pendingPointers(group)], [destinationDigest(this.routingKey, appId, to), this.keys.verificationStem(group)]);
    if (reply === null) return undefined;
    const [id, fields] = reply as [string, unknown];
    // The pointer was found by a digest: the record must be this destination's.
    const record = verificationFromHash(id, pairsToObject(fields), appId);
    return record && record.to === to && record.status === 'pending' && now < record.expiresAt ? record : undefined;
  }

  async checkVerification(appId: string, id: string, candidateHashes: Record<string, string>, now: number): Promise<CheckResult | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    const candidates: string[] = [];
    for (const [kid, hash] of Object.entries(candidateHashes)) candidates.push(kid, hash, packCode(kid, hash) ?? '');
    const reply = await this.redis.run(S.CHECK_VERIFICATION, [key], [appDigest(appId), now, ...candidates]);
    if (reply === null) return undefined;
    const [outcome, fields] = reply as [Outcome, unknown];
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    return verification && { outcome, verification };
  }

  async resendVerification(
    appId: string,
    id: string,
    newCode: { codeHash: string; codeKid: string },
    policy: ResendPolicy,
    now: number,
    outbox?: OutboxMessage,
  ): Promise<ResendResult | undefined> {
    const tag = routingTagOfVerificationId(id);
    if (tag === undefined) return undefined;
    const group = groupOf(tag);
    // Indexed first (a crash then leaves an entry without its message, which the claimer drops); a refused
    // resend takes its entry out again.
    if (outbox) await this.indexOutbox(outbox, now);
    const packed = packCode(newCode.codeKid, newCode.codeHash) ?? '';
    const args = [appDigest(appId), now, packed, newCode.codeKid, newCode.codeHash, policy.maxSends, policy.cooldownMs, policy.ttlMs, VERIFICATION_GRACE_MS, timeOfId(id)];
    args.push(outbox ? this.keys.outboxStem(group) + id : '', outbox?.id ?? '', outbox?.payload ?? '', OUTBOX_KEEP_MS, appId);
    const reply = await this.redis.run(S.RESEND_VERIFICATION, [this.keys.verificationStem(group) + id, this.keys.pendingPointers(group)], args);
    if (reply === null) return undefined;
    const [result, retryAfterMs, fields] = reply as ['ok' | 'not_pending' | 'expired' | 'max_sends' | 'cooldown', number | null, unknown];
    if (result !== 'ok' && outbox) await this.unindexOutbox(outbox);
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    if (!verification) return undefined;
    if (result === 'ok') return { ok: true, verification };
    return retryAfterMs === null ? { ok: false, reason: result, verification } : { ok: false, reason: result, retryAfterMs: Number(retryAfterMs), verification };
  }

  async cancelVerification(appId: string, id: string, now: number): Promise<TransitionResult | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    const reply = await this.redis.run(S.CANCEL_VERIFICATION, [key], [appDigest(appId), now]);
    if (reply === null) return undefined;
    const [ok, fields] = reply as [number, unknown];
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    return verification && { ok: ok === 1, verification };
  }

  /**
   * With `sent`, the message is wiped by the same script as the report (both in the verification's slot);
   * its due index entry, in the `{outbox}` slot, is released after, as `completeOutbox` does.
   */
  async recordDelivery(appId: string, id: string, update: DeliveryUpdate, now: number, sent?: OutboxLease): Promise<VerificationRecord | undefined> {
    // Both keys share a slot only when the message is this verification's own.
    if (sent && sent.reference !== id) throw new OtpdError('INTERNAL', `the message wiped with a report of ${id} must be its own, not ${sent.reference}'s`);
    const key = this.keys.verification(id);
    if (key === undefined) {
      if (sent) await this.completeOutbox(sent);
      return undefined;
    }
    // undefined keeps a field, null clears it, a string sets it (as the SQLite store).
    const op = (value: string | null | undefined): [string, string] => (value === undefined ? ['keep', ''] : value === null ? ['clear', ''] : ['set', value]);
    const args = [appDigest(appId), now, update.status, update.failVerification ? '1' : '0', ...op(update.provider), ...op(update.providerMessageId), ...op(update.failureReason), update.send ?? '', sent?.id ?? ''];
    // The message of a verification id lives in that verification's slot (keys.ts `outboxEntry`).
    const reply = await this.redis.run(S.RECORD_DELIVERY, [key, this.keys.outboxEntry(id)], args);
    if (sent) await this.fenced(sent, 'complete', 0);
    return reply === null ? undefined : verificationFromHash(id, pairsToObject(reply), appId);
  }

  /** Nothing to do: every verification key expires by itself VERIFICATION_GRACE_MS after `expiresAt`. */
  async purgeVerifications(): Promise<number> {
    return 0;
  }

  /**
   * Every verification of (app, to) lives in the slot of its group and carries the routing tag in its id: SCAN
   * for those keys (on every master; only the group's owner has matches) and erase each key whose app and `to`
   * are the person's (other destinations share the tag). The pending pointer goes with the first one.
   */
  async eraseDestination(appId: string, to: string): Promise<number> {
    const tag = routingTag(this.routingKey, appId, to);
    const pointers = this.keys.pendingPointers(groupOf(tag));
    const args = [appDigest(appId), encodeDestination(to), destinationDigest(this.routingKey, appId, to)];
    let erased = 0;
    let cursor: string | undefined;
    do {
      const page = await this.redis.scan(this.keys.verificationsOfTag(tag), cursor, 1000);
      for (const key of page.keys) erased += Number(await this.redis.run(S.ERASE_VERIFICATION, [key, pointers], args));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    await this.redis.guard(() => this.redis.commands.hdel(pointers, args[2]!));
    await this.redis.guard(() => this.redis.commands.del(this.keys.destination(groupOf(tag), args[2]!)));
    return erased;
  }

  // --- destinations --------------------------------------------------------------------------------

  async admitSend(appId: string, to: string, rule: SendRule, now: number): Promise<SendAdmission> {
    const [admitted, cooldownUntil, windowStart, current, previous] = await this.destinationSend(appId, to, 'admit', now, rule.cooldownMs, rule, 0);
    return sendAdmissionFrom(admitted === 1, { cooldownUntil, sends: { windowStart, current, previous } }, rule, now);
  }

  async refundSend(appId: string, to: string, rule: SendRule, claimedUntil: number, now: number): Promise<void> {
    await this.destinationSend(appId, to, 'refund', now, 0, rule, claimedUntil);
  }

  async restartCooldown(appId: string, to: string, cooldownMs: number, now: number): Promise<void> {
    await this.destinationSend(appId, to, 'restart', now, cooldownMs, { cooldownMs, window: null }, 0);
  }

  private async destinationSend(appId: string, to: string, mode: 'admit' | 'refund' | 'restart', now: number, cooldownMs: number, rule: SendRule, claimedUntil: number): Promise<[number, number, number, number, number]> {
    const key = this.keys.destination(groupOf(routingTag(this.routingKey, appId, to)), destinationDigest(this.routingKey, appId, to));
    const reply = await this.redis.run(S.DESTINATION_SEND, [key], [mode, now, cooldownMs, rule.window?.max ?? '', rule.window?.windowMs ?? 0, claimedUntil]);
    return (reply as Array<number | string>).map(Number) as [number, number, number, number, number];
  }

  // --- idempotency ---------------------------------------------------------------------------------

  async beginIdempotent(scope: string, key: string, fingerprint: string, ttlMs: number): Promise<IdempotencyBegin> {
    const reply = await this.redis.run(S.BEGIN_IDEMPOTENT, [this.keys.idempotency(scope, key)], [fingerprint, positive(ttlMs)]);
    const [state, response] = reply as [IdempotencyBegin['state'], string | null];
    if (state === 'done') return { state, response: JSON.parse(response ?? 'null') as StoredResponse };
    return { state };
  }

  async completeIdempotent(scope: string, key: string, response: StoredResponse, ttlMs: number): Promise<void> {
    await this.redis.run(S.COMPLETE_IDEMPOTENT, [this.keys.idempotency(scope, key)], [JSON.stringify(response), positive(ttlMs)]);
  }

  async abandonIdempotent(scope: string, key: string): Promise<void> {
    await this.redis.guard(() => this.redis.commands.del(this.keys.idempotency(scope, key)));
  }

  // --- primitives ----------------------------------------------------------------------------------

  async hit(key: string, limit: number, windowMs: number, now: number, cost = 1): Promise<CounterResult> {
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const resetMs = windowStart + windowMs - now;
    const reply = await this.redis.run(S.HIT, [this.keys.counter(key, windowStart)], [limit, cost, positive(resetMs)]);
    const [allowed, count] = reply as [number, number];
    return { allowed: allowed === 1, count: Number(count), resetMs };
  }

  async slidingHit(key: string, limit: number, windowMs: number, now: number, cost = 1): Promise<SlidingCounterResult> {
    const reply = await this.redis.run(S.SLIDING_HIT, [this.keys.slidingCounter(key)], [limit, windowMs, now, cost]);
    const [allowed, windowStart, current, previous] = (reply as Array<number | string>).map(Number) as [number, number, number, number];
    const decision = slidingResult(allowed === 1, { windowStart, current, previous }, limit, windowMs, now, cost);
    return { allowed: decision.allowed, count: decision.count, retryAfterMs: decision.retryAfterMs };
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    // SET NX is a single atomic command: the first caller creates the key, everyone else finds it.
    const reply = await this.redis.guard(() => this.redis.commands.set(this.keys.claim(key), '1', 'PX', positive(ttlMs), 'NX'));
    return reply === 'OK';
  }

  /** `now` is not needed: an expired record's key is already gone from Redis. */
  async getRecord<T>(namespace: string, id: string): Promise<VersionedRecord<T> | undefined> {
    const [version, data] = await this.redis.guard(() => this.redis.commands.hmget(this.keys.record(namespace, id), 'v', 'd'));
    if (version === null || version === undefined || data === null || data === undefined) return undefined;
    return { value: JSON.parse(data) as T, version: Number(version) };
  }

  async putRecord<T>(namespace: string, id: string, value: T, options: { ifVersion?: number | null; ttlMs?: number }): Promise<number | undefined> {
    const mode = options.ifVersion === undefined ? 'any' : options.ifVersion === null ? 'absent' : 'version';
    const ttl = options.ttlMs === undefined ? '' : positive(options.ttlMs);
    const reply = await this.redis.run(S.PUT_RECORD, [this.keys.record(namespace, id)], [JSON.stringify(value), mode, options.ifVersion ?? '', ttl]);
    return reply === null ? undefined : Number(reply);
  }

  async deleteRecord(namespace: string, id: string): Promise<boolean> {
    return (await this.redis.guard(() => this.redis.commands.del(this.keys.record(namespace, id)))) > 0;
  }

  /**
   * SCAN for the namespace's keys across every master (client.ts), then one HMGET + PTTL per key. A record
   * deleted between the two is skipped; see the contract for the at-least-once guarantee.
   */
  async listRecords<T>(namespace: string, cursor: string | undefined, limit: number): Promise<RecordPage<T>> {
    const stem = this.keys.recordStem(namespace);
    const page = await this.redis.scan(globLiteral(stem) + '*', cursor, limit);
    const items = await Promise.all(
      page.keys.map(async (key) => {
        const [[version, data], ttl] = await Promise.all([
          this.redis.guard(() => this.redis.commands.hmget(key, 'v', 'd')),
          this.redis.guard(() => this.redis.commands.pttl(key)),
        ]);
        if (version === null || version === undefined || data === null || data === undefined) return undefined;
        return { id: key.slice(stem.length), value: JSON.parse(data) as T, version: Number(version), expiresAt: ttl >= 0 ? Date.now() + ttl : null };
      }),
    );
    return { items: items.filter((item) => item !== undefined), nextCursor: page.nextCursor };
  }

  // --- audit log -----------------------------------------------------------------------------------

  async appendAudit(appId: string, entries: NewAuditEntry[], retentionMs: number, now: number): Promise<string[]> {
    if (entries.length === 0) return [];
    const args: (string | number)[] = [Math.max(0, Math.floor(now - retentionMs)), positive(retentionMs)];
    for (const entry of entries) {
      const fields = auditToFields(entry);
      args.push(Math.floor(entry.at), fields.length, ...fields);
    }
    return (await this.redis.run(S.APPEND_AUDIT, [this.keys.auditLog(appId)], args)) as string[];
  }

  /**
   * XREVRANGE from the cursor (or `until`) down to `since`, in chunks. Without filters one chunk of
   * `limit + 1` answers; with filters chunks continue until `limit + 1` entries matched or
   * AUDIT_SCAN_BUDGET entries were examined, and the cursor then continues below the last one examined.
   */
  async listAudit(appId: string, filters: AuditFilters, cursor: string | undefined, limit: number): Promise<AuditPage> {
    if (cursor !== undefined && !STREAM_ID.test(cursor)) throw invalid('cursor', 'is not a cursor this server issued');
    const key = this.keys.auditLog(appId);
    const filtered = filters.event !== undefined || filters.resource !== undefined || filters.destinationHash !== undefined;
    const matches = (entry: AuditEntry): boolean =>
      (filters.event === undefined || entry.event === filters.event) &&
      (filters.resource === undefined || entry.resource === filters.resource) &&
      (filters.destinationHash === undefined || entry.destinationHash === filters.destinationHash);
    const untilEnd = filters.until === undefined ? '+' : `(${Math.max(0, Math.floor(filters.until))}-0`;
    let end = cursor === undefined ? untilEnd : untilEnd !== '+' && compareStreamIds(untilEnd.slice(1), cursor) <= 0 ? untilEnd : `(${cursor}`;
    const start = filters.since === undefined ? '-' : String(Math.max(0, Math.floor(filters.since)));
    const items: AuditEntry[] = [];
    let examined = 0;
    const chunk = filtered ? AUDIT_CHUNK : limit + 1;
    for (;;) {
      const rows = await this.redis.guard(() => this.redis.commands.xrevrange(key, end, start, 'COUNT', chunk));
      examined += rows.length;
      for (const [id, fields] of rows) {
        const entry = auditFromFields(id, fields);
        if (matches(entry)) items.push(entry);
        if (items.length > limit) return { items: items.slice(0, limit), nextCursor: items[limit - 1]!.id };
      }
      if (rows.length < chunk) return { items, nextCursor: undefined };
      const last = rows[rows.length - 1]![0];
      if (!filtered || examined >= AUDIT_SCAN_BUDGET) return { items, nextCursor: last };
      end = `(${last}`;
    }
  }

  async deleteAudit(appId: string, ids: string[]): Promise<number> {
    const valid = ids.filter((id) => STREAM_ID.test(id));
    if (valid.length === 0) return 0;
    return this.redis.guard(() => this.redis.commands.xdel(this.keys.auditLog(appId), ...valid));
  }

  async purgeAudit(appId: string, olderThan: number): Promise<number> {
    return this.redis.guard(() => this.redis.commands.xtrim(this.keys.auditLog(appId), 'MINID', String(Math.max(0, Math.floor(olderThan)))));
  }

  // --- event queue ---------------------------------------------------------------------------------

  async enqueueEvents(events: NewQueuedEvent[], now: number): Promise<void> {
    await Promise.all(
      events.map((event) =>
        this.redis.run(S.ENQUEUE_EVENT, [this.keys.eventsDue(), this.keys.event(event.id)], [
          event.id,
          event.appId,
          event.type,
          event.payload,
          Math.floor(event.dueAt),
          Math.floor(event.expiresAt),
          positive(event.expiresAt - now),
        ]),
      ),
    );
  }

  async claimEvents(now: number, leaseMs: number, limit: number): Promise<QueuedEvent[]> {
    const reply = (await this.redis.run(S.CLAIM_EVENTS, [this.keys.eventsDue()], [Math.floor(now), positive(leaseMs), limit, this.keys.eventStem()])) as [string, unknown][];
    return reply.map(([id, fields]) => eventFromHash(id, pairsToObject(fields)));
  }

  async completeEvent(id: string): Promise<void> {
    await this.redis.run(S.COMPLETE_EVENT, [this.keys.eventsDue(), this.keys.event(id)], [id]);
  }

  async retryEvent(id: string, dueAt: number, lastError: string): Promise<void> {
    await this.redis.run(S.RETRY_EVENT, [this.keys.eventsDue(), this.keys.event(id)], [id, Math.floor(dueAt), lastError]);
  }

  // --- outbox --------------------------------------------------------------------------------------

  private outboxMember(message: Pick<OutboxMessage, 'reference' | 'id'>): string {
    if (/[{}|]/.test(message.reference) || message.id.includes('|')) throw new OtpdError('INTERNAL', `outbox reference ${message.reference} must not contain {, } or |`);
    return `${message.reference}|${message.id}`;
  }

  /** A message written already leased (`OutboxMessage.lease`) is indexed as claimed: scored at the lease's end (the fence), one try. */
  private async indexOutbox(message: OutboxMessage, now: number): Promise<void> {
    const { lease } = message;
    await this.redis.run(S.OUTBOX_INDEX, [this.keys.outboxDue(), this.keys.outboxMeta()], [
      this.outboxMember(message),
      lease ? lease.until : message.dueAt,
      positive(message.expiresAt + OUTBOX_KEEP_MS - now),
      lease ? 1 : 0,
    ]);
  }

  private async unindexOutbox(message: OutboxMessage): Promise<void> {
    await this.redis.run(S.OUTBOX_UNINDEX, [this.keys.outboxDue(), this.keys.outboxMeta()], [this.outboxMember(message)]);
  }

  private fenced(lease: OutboxLease, op: 'renew' | 'reschedule' | 'defer' | 'complete', score: number, lastError = ''): Promise<boolean> {
    return this.redis
      .run(S.OUTBOX_FENCED, [this.keys.outboxDue(), this.keys.outboxMeta()], [this.outboxMember(lease), lease.leaseUntil, op, score, lastError])
      .then((reply) => Number(reply) === 1);
  }

  async enqueueOutbox(message: OutboxMessage, now: number): Promise<void> {
    await this.indexOutbox(message, now);
    await this.redis.run(S.OUTBOX_PUT, [this.keys.outboxEntry(message.reference)], [
      message.id,
      message.appId,
      message.payload,
      message.send,
      message.expiresAt,
      positive(message.expiresAt + OUTBOX_KEEP_MS - now),
    ]);
  }

  /**
   * Leases due index entries in the `{outbox}` slot, then reads each message from its own slot, a
   * verification's message together with the verification's state (same slot, one script). An entry
   * whose message is missing or is an older one than the stored message was replaced (resend) or never
   * written (crash between index and create): it is dropped, or deferred briefly while its create may still
   * be on the way.
   */
  async claimOutbox(now: number, leaseMs: number, limit: number, leaseToken: string): Promise<OutboxLease[]> {
    const reply = (await this.redis.run(S.OUTBOX_CLAIM, [this.keys.outboxDue(), this.keys.outboxMeta()], [now, positive(leaseMs), limit])) as [string | number, [string, string | number, string][]];
    const leaseUntil = Number(reply[0]);
    const claimed = await Promise.all(
      reply[1].map(async ([member, tries, lastError]) => {
        const bar = member.indexOf('|');
        const reference = member.slice(0, bar);
        const id = member.slice(bar + 1);
        const messageKey = this.keys.outboxEntry(reference);
        const ofVerification = isVerificationId(reference);
        // A malformed `ve_` reference has no verification key: no such verification can exist.
        const verificationKey = ofVerification ? this.keys.verification(reference) : undefined;
        let entry: Record<string, string | undefined>;
        let verification: unknown;
        if (verificationKey === undefined) {
          entry = await this.redis.guard(() => this.redis.commands.hgetall(messageKey));
        } else {
          const [fields, state] = (await this.redis.run(S.OUTBOX_READ_WITH_VERIFICATION, [messageKey, verificationKey], [])) as [unknown, unknown];
          entry = pairsToObject(fields);
          verification = state;
        }
        const lease: OutboxLease = {
          id,
          appId: entry.a ?? '',
          reference,
          payload: entry.p ?? '',
          send: Number(entry.c ?? 0),
          dueAt: now,
          expiresAt: Number(entry.e ?? 0),
          tries: Number(tries),
          lastError: lastError === '' ? null : lastError,
          leaseToken,
          leaseUntil,
        };
        if (entry.i !== id) {
          const replaced = entry.i !== undefined && entry.i > id;
          if (!replaced && now - timeOfId(id) < OUTBOX_ORPHAN_GRACE_MS) await this.fenced(lease, 'defer', now + OUTBOX_DEFER_MS);
          else await this.fenced(lease, 'complete', 0);
          return undefined;
        }
        if (ofVerification) lease.verification = verificationKey === undefined ? null : verificationStateFromFields(verification, lease.appId);
        return lease;
      }),
    );
    return claimed.filter((lease): lease is OutboxLease => lease !== undefined);
  }

  renewOutbox(lease: OutboxLease, leaseMs: number, now: number): Promise<boolean> {
    return this.fenced(lease, 'renew', now + leaseMs);
  }

  rescheduleOutbox(lease: OutboxLease, dueAt: number, lastError: string): Promise<boolean> {
    return this.fenced(lease, 'reschedule', dueAt, lastError.slice(0, 1000));
  }

  /** Wipes the message (unless a newer one replaced it), then releases the index entry. */
  async completeOutbox(lease: OutboxLease): Promise<boolean> {
    await this.redis.run(S.OUTBOX_DELETE_ENTRY, [this.keys.outboxEntry(lease.reference)], [lease.id]);
    return this.fenced(lease, 'complete', 0);
  }
}

/** Redis stream ids: `<ms>-<seq>`. */
const STREAM_ID = /^\d{1,16}-\d{1,20}$/;
/** Entries one filtered listing call examines at most (as the SQLite store's AUDIT_SCAN_BUDGET). */
const AUDIT_SCAN_BUDGET = 10_000;
const AUDIT_CHUNK = 500;

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** Redis refuses a zero or negative PX/PEXPIRE; a ttl that has already run out keeps the key for 1 ms. */
function positive(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

export async function openRedisStore(options: RedisStoreOptions): Promise<Store> {
  const keys = new RedisKeys(options.prefix);
  const connection = await RedisConnection.open(options, S.SCRIPTS);
  return new RedisStore(connection, keys, options.routingKey);
}
