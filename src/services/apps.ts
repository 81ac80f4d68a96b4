import { randomBytes } from 'node:crypto';
import { newId } from '../core/ids.js';
import { hashApiKey, Keyring } from '../core/keyring.js';
import { applySettings, defaultSettings, type AppSettings } from '../core/settings.js';
import { invalid, OtpdError } from '../errors.js';
import type { ApiKeyRecord, AppRecord, Store } from '../store/store.js';
import { deleteAppRecords, type AppOwnedRecords } from './app-records.js';
import type { RecordRewrap } from './secrets-rotation.js';

export const DEFAULT_APP = 'default';
const APP_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** How long a process trusts a key lookup; revocation reaches other processes within this time. */
const KEY_CACHE_MS = 5_000;

export interface Principal {
  app: AppRecord;
  keyId: string;
}

/**
 * Per-app credentials of the dialects that identify an app by something other than an API key:
 * `appKey` in the path (seed 004), `PartnerID` + `EncryptKey` for signed partner requests (seed 000).
 * The EncryptKey is stored encrypted under the keyring; the two ids are indexed to find the app.
 */
export interface DialectCredentials {
  appKey: string;
  partnerId: string;
  encryptKey: string;
}

interface StoredCredentials {
  appKey: string;
  partnerId: string;
  encryptKey: string;
}

const CREDENTIALS = 'app-credentials';
const BY_APP_KEY = 'app-by-appkey';
const BY_PARTNER_ID = 'app-by-partner';

export interface IssuedKey {
  id: string;
  app: string;
  apiKey: string;
}

function newApiKey(): string {
  return `otpd_${randomBytes(32).toString('base64url')}`;
}

/** Apps (tenants), their settings and API keys. */
export class AppsService {
  private readonly keyCache = new Map<string, { principal: Principal | undefined; until: number }>();
  private readonly appCache = new Map<string, { app: AppRecord | undefined; until: number }>();

  private readonly ownedRecords: AppOwnedRecords[] = [];

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
    /** New apps get production defaults (keyless dialect access off, decisions 8). */
    private readonly production = false,
  ) {}

  /**
   * On first start creates the `default` app. Returns the API key when one was generated here, so the
   * caller prints it once; `configuredKey` (OTPD_API_KEY) is registered for the default app if new.
   */
  async ensureDefaultApp(configuredKey: string | undefined): Promise<{ app: AppRecord; generatedKey?: string }> {
    let app = await this.store.getAppByName(DEFAULT_APP);
    let generatedKey: string | undefined;
    if (!app) {
      try {
        const created = await this.create(DEFAULT_APP, {}, configuredKey);
        app = created.app;
        if (!configuredKey) generatedKey = created.apiKey;
      } catch (error) {
        // Another process (a sibling worker) created it first.
        if (!(error instanceof OtpdError && error.code === 'APP_EXISTS')) throw error;
        app = (await this.store.getAppByName(DEFAULT_APP))!;
      }
    }
    if (configuredKey && !(await this.store.getApiKeyByHash(hashApiKey(configuredKey)))) {
      await this.insertKey(app.id, configuredKey);
    }
    return generatedKey ? { app, generatedKey } : { app };
  }

  async create(name: string, settings: Record<string, unknown>, apiKey?: string): Promise<{ app: AppRecord; apiKey: string; keyId: string; credentials: DialectCredentials }> {
    if (!APP_NAME.test(name)) throw invalid('name', 'must be 1-63 lower-case letters, digits, - or _, starting with a letter or digit');
    const now = this.clock();
    const app: AppRecord = { id: newId('app', now), name, settings: applySettings(defaultSettings(this.production), settings), createdAt: now, updatedAt: now };
    await this.store.insertApp(app);
    const key = apiKey ?? newApiKey();
    const keyId = await this.insertKey(app.id, key);
    const credentials = await this.issueCredentials(app);
    return { app, apiKey: key, keyId, credentials };
  }

  private async issueCredentials(app: AppRecord): Promise<DialectCredentials> {
    const credentials: DialectCredentials = {
      appKey: randomBytes(32).toString('hex'),
      partnerId: randomBytes(8).toString('hex').toUpperCase(),
      encryptKey: randomBytes(32).toString('base64'),
    };
    const now = this.clock();
    const stored: StoredCredentials = { ...credentials, encryptKey: this.keyring.encrypt('dialect-secret', credentials.encryptKey, app.id) };
    await this.store.putRecord(CREDENTIALS, app.id, stored, {}, now);
    await this.store.putRecord(BY_APP_KEY, credentials.appKey, { appId: app.id }, {}, now);
    await this.store.putRecord(BY_PARTNER_ID, credentials.partnerId, { appId: app.id }, {}, now);
    return credentials;
  }

  /** The dialect credentials of an app (the EncryptKey decrypted; fails closed on a wrong server secret). */
  async credentialsOf(app: AppRecord): Promise<DialectCredentials> {
    const stored = await this.store.getRecord<StoredCredentials>(CREDENTIALS, app.id, this.clock());
    if (!stored) return this.issueCredentials(app);
    return { ...stored.value, encryptKey: this.keyring.decrypt('dialect-secret', stored.value.encryptKey, app.id) };
  }

  /** The app whose seed-004 appKey this is. */
  findByAppKey(appKey: string): Promise<AppRecord | undefined> {
    return this.findIndexed(BY_APP_KEY, appKey);
  }

  /** The app whose seed-000 PartnerID this is. */
  findByPartnerId(partnerId: string): Promise<AppRecord | undefined> {
    return this.findIndexed(BY_PARTNER_ID, partnerId);
  }

  private async findIndexed(namespace: string, id: string): Promise<AppRecord | undefined> {
    if (id.length === 0 || id.length > 128) return undefined;
    const entry = await this.store.getRecord<{ appId: string }>(namespace, id, this.clock());
    return entry ? this.store.getApp(entry.value.appId) : undefined;
  }

  async get(name: string): Promise<AppRecord> {
    const app = await this.store.getAppByName(name);
    if (!app) throw new OtpdError('NOT_FOUND', `no app named "${name}"`);
    return app;
  }

  list(): Promise<AppRecord[]> {
    return this.store.listApps();
  }

  async update(name: string, changes: Partial<Record<keyof AppSettings, unknown>>): Promise<AppRecord> {
    const app = await this.get(name);
    const next: AppRecord = { ...app, settings: applySettings(app.settings, changes), updatedAt: this.clock() };
    await this.store.updateApp(next);
    this.keyCache.clear();
    this.appCache.clear();
    return next;
  }

  async delete(name: string): Promise<void> {
    const app = await this.get(name);
    const credentials = await this.store.getRecord<StoredCredentials>(CREDENTIALS, app.id, this.clock());
    if (credentials) {
      await this.store.deleteRecord(BY_APP_KEY, credentials.value.appKey);
      await this.store.deleteRecord(BY_PARTNER_ID, credentials.value.partnerId);
      await this.store.deleteRecord(CREDENTIALS, app.id);
    }
    await this.store.deleteApp(app.id);
    this.keyCache.clear();
    this.appCache.clear();
    // After the app is gone, so no request of it can add a record behind the sweep.
    await deleteAppRecords(this.store, app.id, this.ownedRecords, this.clock);
  }

  /** Record kinds deleted with their app (subjects, factors, webhook secrets: src/services/index.ts). */
  deletesWithApp(...kinds: AppOwnedRecords[]): this {
    this.ownedRecords.push(...kinds);
    return this;
  }

  async createKey(appName: string): Promise<IssuedKey> {
    const app = await this.get(appName);
    const apiKey = newApiKey();
    const id = await this.insertKey(app.id, apiKey);
    return { id, app: app.name, apiKey };
  }

  async listKeys(appName: string): Promise<ApiKeyRecord[]> {
    const app = await this.get(appName);
    return this.store.listApiKeys(app.id);
  }

  async revokeKey(keyId: string): Promise<void> {
    if (!(await this.store.revokeApiKey(keyId, this.clock()))) throw new OtpdError('NOT_FOUND', `no active API key with id "${keyId}"`);
    this.keyCache.clear();
    this.appCache.clear();
  }

  /**
   * An app by id for background work (the outbox sends a message per create), trusted for KEY_CACHE_MS
   * like an API key's app: a change made by another process reaches this one within that time, one made
   * here at once.
   */
  async byId(appId: string): Promise<AppRecord | undefined> {
    const now = this.clock();
    const cached = this.appCache.get(appId);
    if (cached && cached.until > now) return cached.app;
    const app = await this.store.getApp(appId);
    if (this.appCache.size > 10_000) this.appCache.clear();
    this.appCache.set(appId, { app, until: now + KEY_CACHE_MS });
    return app;
  }

  /** The app and key id behind an API key, or undefined for an unknown or revoked key. */
  async authenticate(apiKey: string): Promise<Principal | undefined> {
    const hash = hashApiKey(apiKey);
    const now = this.clock();
    const cached = this.keyCache.get(hash);
    if (cached && cached.until > now) return cached.principal;
    const key = await this.store.getApiKeyByHash(hash);
    const app = key && key.revokedAt === null ? await this.store.getApp(key.appId) : undefined;
    const principal = key && app ? { app, keyId: key.id } : undefined;
    if (this.keyCache.size > 10_000) this.keyCache.clear();
    this.keyCache.set(hash, { principal, until: now + KEY_CACHE_MS });
    return principal;
  }

  /**
   * Counts one API call against the key's hourly quota when the app sets `apiCallsPerHour`
   * (decisions 7: quotas count per API key). Atomic on the store, so every instance shares the count.
   */
  async consumeQuota(principal: Principal): Promise<void> {
    const limit = principal.app.settings.apiCallsPerHour;
    if (limit === null) return;
    const result = await this.store.hit(`quota:${principal.keyId}`, limit, 3_600_000, this.clock());
    if (!result.allowed) {
      throw new OtpdError('QUOTA_EXCEEDED', `API Key usage limit reached! Allowed rate is ${limit} API calls per hour`, {
        retryAfter: Math.max(1, Math.ceil(result.resetMs / 1000)),
        extensions: { limit },
      });
    }
  }

  private async insertKey(appId: string, apiKey: string): Promise<string> {
    const now = this.clock();
    const id = newId('key', now);
    await this.store.insertApiKey({ id, appId, hash: hashApiKey(apiKey), prefix: apiKey.slice(0, 12), createdAt: now, revokedAt: null });
    return id;
  }
}

/** `otpd secrets rotate` (src/services/secrets-rotation.ts): the EncryptKey re-encrypted under the current key. */
export const APP_CREDENTIALS_REWRAP: RecordRewrap<StoredCredentials> = {
  namespace: CREDENTIALS,
  rewrap(stored, appId, keyring) {
    if (Keyring.kidOf(stored.encryptKey) === keyring.currentKid) return undefined;
    return { ...stored, encryptKey: keyring.encrypt('dialect-secret', keyring.decrypt('dialect-secret', stored.encryptKey, appId), appId) };
  },
};
