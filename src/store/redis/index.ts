import { routingTag, routingTagOfVerificationId } from '../../core/ids.js';
import type { ResendPolicy, VerificationRecord } from '../../core/verification.js';
import { OtpdError } from '../../errors.js';
import type {
  ApiKeyRecord,
  AppRecord,
  CheckResult,
  CounterResult,
  CreateResult,
  DeliveryUpdate,
  IdempotencyBegin,
  ResendResult,
  Store,
  StoredResponse,
  TransitionResult,
  VersionedRecord,
} from '../store.js';
import { RedisConnection, type ConnectionOptions } from './client.js';
import { apiKeyFromHash, appFromHash, pairsToObject, verificationFromHash, verificationToFields } from './codec.js';
import { RedisKeys } from './keys.js';
import * as S from './scripts.js';

/**
 * How long a finished or expired verification stays readable after `expiresAt` (status lookups, delivery
 * reports arriving late) before Redis drops it. The SQLite store keeps rows until `purgeVerifications`;
 * here the key's own expiry does that job.
 */
export const VERIFICATION_GRACE_MS = 24 * 60 * 60 * 1000;

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

  async createVerification(record: VerificationRecord, now: number): Promise<CreateResult> {
    const tag = routingTagOfVerificationId(record.id);
    // The pending index is found by (app, to) alone, so the id must carry that destination's tag; an id
    // made for another destination would put the verification where no lookup or supersede can see it.
    if (tag === undefined || tag !== routingTag(this.routingKey, record.appId, record.to)) {
      throw new OtpdError('INTERNAL', `verification id ${record.id} does not carry the routing tag of its destination`);
    }
    const reply = await this.redis.run(S.CREATE_VERIFICATION, [this.keys.verificationStem(tag) + record.id, this.keys.pending(tag, record.appId, record.to)], [
      this.keys.verificationStem(tag),
      record.id,
      now,
      VERIFICATION_GRACE_MS,
      ...verificationToFields(record),
    ]);
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
    const tag = routingTag(this.routingKey, appId, to);
    const reply = await this.redis.run(S.FIND_PENDING, [this.keys.pending(tag, appId, to)], [this.keys.verificationStem(tag)]);
    if (reply === null) return undefined;
    const [id, fields] = reply as [string, unknown];
    const record = verificationFromHash(id, pairsToObject(fields), appId);
    return record && record.status === 'pending' && now < record.expiresAt ? record : undefined;
  }

  async checkVerification(appId: string, id: string, candidateHashes: Record<string, string>, now: number): Promise<CheckResult | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    const candidates = Object.entries(candidateHashes).flat();
    const reply = await this.redis.run(S.CHECK_VERIFICATION, [key], [appId, now, ...candidates]);
    if (reply === null) return undefined;
    const [outcome, fields] = reply as [Outcome, unknown];
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    return verification && { outcome, verification };
  }

  async resendVerification(appId: string, id: string, newCode: { codeHash: string; codeKid: string }, policy: ResendPolicy, now: number): Promise<ResendResult | undefined> {
    const tag = routingTagOfVerificationId(id);
    if (tag === undefined) return undefined;
    const args = [appId, now, newCode.codeHash, newCode.codeKid, policy.maxSends, policy.cooldownMs, policy.ttlMs, VERIFICATION_GRACE_MS, this.keys.pendingStem(tag), id];
    const reply = await this.redis.run(S.RESEND_VERIFICATION, [this.keys.verificationStem(tag) + id], args);
    if (reply === null) return undefined;
    const [result, retryAfterMs, fields] = reply as ['ok' | 'not_pending' | 'expired' | 'max_sends' | 'cooldown', number | null, unknown];
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    if (!verification) return undefined;
    if (result === 'ok') return { ok: true, verification };
    return retryAfterMs === null ? { ok: false, reason: result, verification } : { ok: false, reason: result, retryAfterMs: Number(retryAfterMs), verification };
  }

  async cancelVerification(appId: string, id: string, now: number): Promise<TransitionResult | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    const reply = await this.redis.run(S.CANCEL_VERIFICATION, [key], [appId, now]);
    if (reply === null) return undefined;
    const [ok, fields] = reply as [number, unknown];
    const verification = verificationFromHash(id, pairsToObject(fields), appId);
    return verification && { ok: ok === 1, verification };
  }

  async recordDelivery(appId: string, id: string, update: DeliveryUpdate, now: number): Promise<VerificationRecord | undefined> {
    const key = this.keys.verification(id);
    if (key === undefined) return undefined;
    // undefined keeps a field, null clears it, a string sets it (as the SQLite store).
    const op = (value: string | null | undefined): [string, string] => (value === undefined ? ['keep', ''] : value === null ? ['clear', ''] : ['set', value]);
    const args = [appId, now, update.status, update.failVerification ? '1' : '0', ...op(update.provider), ...op(update.providerMessageId), ...op(update.failureReason)];
    const reply = await this.redis.run(S.RECORD_DELIVERY, [key], args);
    return reply === null ? undefined : verificationFromHash(id, pairsToObject(reply), appId);
  }

  /** Nothing to do: every verification key expires by itself VERIFICATION_GRACE_MS after `expiresAt`. */
  async purgeVerifications(): Promise<number> {
    return 0;
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
