import type { Logger } from 'pino';
import { maskDestination } from '../core/destination.js';
import type { Keyring } from '../core/keyring.js';
import { NO_REQUEST, type RequestContext } from '../core/rate-limits.js';
import type { CheckOutcome, VerificationRecord } from '../core/verification.js';
import { invalid } from '../errors.js';
import type { AppRecord, AuditEntry, AuditFilters, AuditPage, DeliveryUpdate, NewAuditEntry, Store } from '../store/store.js';
import { AppsService, type DialectCredentials, type IssuedKey } from './apps.js';
import { verificationEventData, type EventsService } from './events.js';
import type { FactorCheck, FactorRecord } from './factors.js';

/**
 * The audit log (docs/audit-and-events.md): one append-only entry per create, send, check (success,
 * failure, replay), lockout, key use and admin action, with the app, the API key id, the client's IP and
 * user agent and the request id. Never a code or a secret; the destination only as a keyed hash (so a
 * person's entries can be found for erasure without storing the number) and masked (`+1******0100`).
 *
 * Writing is off the request path: entries of one event-loop turn go to the store in one call after the
 * answer's own write, in the same SQLite group commit as the turn's other writes. A process killed in that
 * instant loses them — a documented trade for not adding a store round trip to every request. Store errors
 * are logged, never thrown at the caller.
 */
export const AUDIT_EVENTS = [
  'verification.created',
  'verification.resent',
  'verification.canceled',
  'delivery.queued',
  'delivery.sent',
  'delivery.delivered',
  'delivery.undelivered',
  'delivery.failed',
  'verification.approved',
  'check.failed',
  'check.expired',
  'check.not_pending',
  'verification.max_attempts_reached',
  'verification.locked',
  'code.replayed',
  'factor.verified',
  'factor.check_passed',
  'factor.check_failed',
  'factor.locked',
  'app.created',
  'app.updated',
  'app.deleted',
  'key.created',
  'key.revoked',
  'webhook.abandoned',
  'webhook_secret.rotated',
  'subject.erased',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export interface AuditFacts {
  /** The verification, factor, API key or app the event is about. */
  resource?: string | null;
  /** The person's phone number or address, in the clear here: stored only hashed and masked. */
  destination?: string | null;
  /** `destination`'s keyed hash when the caller has it already (`destinationHash`). */
  destinationHash?: string;
  details?: Record<string, string | number | boolean | null>;
}

export interface AuditQuery {
  event?: string | undefined;
  verificationId?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

const DAY_MS = 86_400_000;
const DEFAULT_LIMIT = 50;
export const MAX_AUDIT_LIMIT = 200;
const APP_CACHE_MS = 5_000;
const MAX_USER_AGENT = 256;
/**
 * Verifications whose destination hash is remembered: a create's entry and its delivery report's come
 * milliseconds apart and hash the same (app, to). Keyed by verification id, whose destination never
 * changes; only hashes are kept, never a destination.
 */
const HASH_CACHE_SIZE = 8192;

/** The request fields of a context, copied: the caller's object may be reused or changed after `record` returns. */
function snapshot(context: RequestContext): Pick<NewAuditEntry, 'keyId' | 'ip' | 'userAgent' | 'requestId'> {
  return {
    keyId: context.keyId ?? null,
    ip: context.ip ?? null,
    userAgent: context.userAgent === undefined ? null : context.userAgent.slice(0, MAX_USER_AGENT),
    requestId: context.requestId ?? null,
  };
}

export class AuditService {
  private pending: { appId: string; entry: NewAuditEntry }[] = [];
  private flushScheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly apps = new Map<string, { app: AppRecord | undefined; until: number }>();
  /**
   * Verification id → its destination hash under the current key, in two generations of HASH_CACHE_SIZE:
   * when the newer fills up it becomes the older and the older is dropped (cheaper than evicting one by
   * one from a Map, whose first live key gets slow to find after many deletions at its front).
   */
  private hashes = new Map<string, string>();
  private olderHashes = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
    private readonly logger: Logger,
    private readonly events: EventsService,
  ) {
    events.onAbandon = (appId, event, reason) =>
      this.record(appId, 'webhook.abandoned', { resource: event.id, details: { type: event.type, attempts: event.attempts, reason } }, NO_REQUEST);
  }

  /** The keyed hash an entry stores for a destination: per app, so entries of two apps cannot be linked. */
  destinationHash(appId: string, to: string, kid = this.keyring.currentKid): string {
    return this.keyring.mac('audit', `${appId}\n${to}`, kid);
  }

  /** `destinationHash` of a verification's destination, remembered for the entries that follow its first. */
  private verificationHash(verification: VerificationRecord): string {
    const hash = this.hashes.get(verification.id) ?? this.olderHashes.get(verification.id);
    if (hash !== undefined) return hash;
    const computed = this.destinationHash(verification.appId, verification.to);
    if (this.hashes.size >= HASH_CACHE_SIZE) {
      this.olderHashes = this.hashes;
      this.hashes = new Map();
    }
    this.hashes.set(verification.id, computed);
    return computed;
  }

  /** The destination's hash under every configured key (entries written before a rotation use the old one). */
  destinationHashes(appId: string, to: string): string[] {
    return this.keyring.kids.map((kid) => this.destinationHash(appId, to, kid));
  }

  /**
   * Records one entry. `context`: the HTTP request being served (`contextOf` in src/http/request-context.ts),
   * or NO_REQUEST for work no request asked for (CLI, delivery reports). Returns at once; `flush` waits for
   * the write.
   */
  record(app: AppRecord | string, event: AuditEvent, facts: AuditFacts, context: RequestContext): void {
    const appId = typeof app === 'string' ? app : app.id;
    if (typeof app !== 'string') this.apps.set(app.id, { app, until: this.clock() + APP_CACHE_MS });
    const destination = facts.destination ?? null;
    this.pending.push({
      appId,
      entry: {
        at: this.clock(),
        event,
        resource: facts.resource ?? null,
        ...snapshot(context),
        destinationHash: destination === null ? null : (facts.destinationHash ?? this.destinationHash(appId, destination)),
        destinationMasked: destination === null ? null : maskDestination(destination),
        details: facts.details ?? null,
      },
    });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.writePending());
  }

  /** `record`, then waits until the entry is stored: for admin actions, which are rare and must not be lost. */
  async recordNow(app: AppRecord | string, event: AuditEvent, facts: AuditFacts, context: RequestContext): Promise<void> {
    this.record(app, event, facts, context);
    await this.flush();
  }

  private writePending(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    const byApp = new Map<string, NewAuditEntry[]>();
    for (const { appId, entry } of batch) {
      const list = byApp.get(appId);
      if (list) list.push(entry);
      else byApp.set(appId, [entry]);
    }
    for (const [appId, entries] of byApp) {
      const task = (async () => {
        const app = await this.app(appId);
        const retentionMs = (app?.settings.auditRetentionDays ?? 365) * DAY_MS;
        await this.store.appendAudit(appId, entries, retentionMs, this.clock());
      })().catch((error: unknown) => {
        this.logger.error({ err: error, appId, events: entries.map((e) => e.event) }, 'could not write audit entries');
      });
      this.inFlight.add(task);
      void task.finally(() => this.inFlight.delete(task));
    }
  }

  /** Resolves once every entry (and webhook event) recorded so far is in the store. */
  async flush(): Promise<void> {
    if (this.pending.length > 0) this.writePending();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.events.flush();
  }

  private async app(appId: string): Promise<AppRecord | undefined> {
    const now = this.clock();
    const cached = this.apps.get(appId);
    if (cached && cached.until > now) return cached.app;
    const app = await this.store.getApp(appId);
    if (this.apps.size > 10_000) this.apps.clear();
    this.apps.set(appId, { app, until: now + APP_CACHE_MS });
    return app;
  }

  // --- verifications -------------------------------------------------------------------------------

  /** A created, resent or canceled verification. A new one also arms its `verification.expired` webhook timer. */
  verification(app: AppRecord, event: 'verification.created' | 'verification.resent' | 'verification.canceled', verification: VerificationRecord, context: RequestContext): void {
    this.record(app, event, this.verificationFacts(verification), context);
    if (event === 'verification.created') this.events.scheduleExpiry(app, verification);
  }

  /**
   * One check's outcome (standards S4). `codeMatched`: whether the submitted code hashes to the stored one,
   * which tells a replayed approved code (`code.replayed`) from any other check of a finished verification.
   */
  checked(app: AppRecord, outcome: CheckOutcome, verification: VerificationRecord, codeMatched: boolean, context: RequestContext): void {
    const event = checkEvent(outcome, verification, codeMatched);
    this.record(app, event, this.verificationFacts(verification, { outcome }), context);
    if (event === 'verification.approved' || event === 'verification.max_attempts_reached' || event === 'code.replayed') {
      this.events.emit(app, event, verificationEventData(verification));
    }
  }

  /** A provider's acceptance, failure or later receipt (no request context: it is the provider's doing). */
  delivery(appId: string, update: DeliveryUpdate, verification: VerificationRecord | undefined): void {
    if (!verification) return;
    const details = { channel: verification.channel, provider: update.provider ?? verification.deliveryProvider, reason: update.failureReason ?? null };
    this.record(appId, `delivery.${update.status}`, { resource: verification.id, destination: verification.to, destinationHash: this.verificationHash(verification), details }, NO_REQUEST);
    if (update.status === 'failed') {
      void this.app(appId).then(
        (app) => app && this.events.emit(app, 'delivery.failed', { ...verificationEventData(verification), provider: details.provider, reason: details.reason }),
        (error: unknown) => this.logger.error({ err: error, appId }, 'could not queue delivery.failed'),
      );
    }
  }

  private verificationFacts(verification: VerificationRecord, extra: Record<string, string | number | boolean | null> = {}): AuditFacts {
    return {
      resource: verification.id,
      destination: verification.to,
      destinationHash: this.verificationHash(verification),
      details: { channel: verification.channel, status: verification.status, attempts: verification.attempts, maxAttempts: verification.maxAttempts, sends: verification.sends, ...extra },
    };
  }

  // --- factors -------------------------------------------------------------------------------------

  /** One checked authenticator or recovery code; `before` is the factor as it was when the code came. */
  factorChecked(app: AppRecord, before: FactorRecord, result: FactorCheck, context: RequestContext): void {
    const resource = before.id;
    const details = { type: before.type, failures: result.factor.failures, recovery: result.recoveryCodesRemaining !== undefined };
    if (result.valid) {
      const first = before.status !== 'verified';
      this.record(app, first ? 'factor.verified' : 'factor.check_passed', { resource, details }, context);
      if (first) this.events.emit(app, 'factor.verified', { factorId: before.id, type: before.type, account: before.account, issuer: before.issuer });
    } else if (result.reason === 'code_reused') {
      this.record(app, 'code.replayed', { resource, details }, context);
      this.events.emit(app, 'code.replayed', { factorId: before.id, type: before.type });
    } else {
      this.record(app, result.factor.lockedUntil !== null ? 'factor.locked' : 'factor.check_failed', { resource, details }, context);
    }
  }

  // --- reading -------------------------------------------------------------------------------------

  /** A page of an app's entries, newest first (GET /v1/audit, `otpd audit`). */
  list(app: AppRecord, query: AuditQuery): Promise<AuditPage> {
    const limit = query.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT) throw invalid('limit', `must be an integer from 1 to ${MAX_AUDIT_LIMIT}`);
    if (query.event !== undefined && !(AUDIT_EVENTS as readonly string[]).includes(query.event)) throw invalid('event', `must be one of ${AUDIT_EVENTS.join(', ')}`);
    if (query.since !== undefined && query.until !== undefined && query.since >= query.until) throw invalid('until', 'must be after since');
    const filters: AuditFilters = {};
    if (query.event !== undefined) filters.event = query.event;
    if (query.verificationId !== undefined) filters.resource = query.verificationId;
    if (query.since !== undefined) filters.since = query.since;
    if (query.until !== undefined) filters.until = query.until;
    return this.store.listAudit(app.id, filters, query.cursor, limit);
  }

  /** Every entry about a destination (erasure), under any configured key, walking the whole log in pages. */
  async idsForDestination(appId: string, to: string): Promise<string[]> {
    const ids: string[] = [];
    for (const destinationHash of this.destinationHashes(appId, to)) {
      let cursor: string | undefined;
      do {
        const page = await this.store.listAudit(appId, { destinationHash }, cursor, MAX_AUDIT_LIMIT);
        ids.push(...page.items.map((item: AuditEntry) => item.id));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
    }
    return ids;
  }
}

/** The audit event of a check outcome (docs/audit-and-events.md has the table). */
export function checkEvent(outcome: CheckOutcome, verification: VerificationRecord, codeMatched: boolean): AuditEvent {
  switch (outcome) {
    case 'approved':
      return 'verification.approved';
    case 'wrong':
      return verification.status === 'max_attempts_reached' ? 'verification.max_attempts_reached' : 'check.failed';
    case 'expired':
      return 'check.expired';
    case 'locked':
      return 'verification.locked';
    case 'not_pending':
      if (verification.status === 'max_attempts_reached') return 'verification.locked';
      if (verification.status === 'approved' && codeMatched) return 'code.replayed';
      return 'check.not_pending';
  }
}

/**
 * Apps and keys with their admin actions audited (`app.created`, `key.revoked`, …). A subclass, so every
 * caller — the CLI, the config file, the default app at start — goes through the same audited methods.
 * Those callers are all the callers there are (no HTTP route administers apps), so the entries carry
 * NO_REQUEST; a route that did would have to pass its context here.
 */
export class AuditedAppsService extends AppsService {
  private audit: AuditService | undefined;

  /** Set once the audit service exists (it needs the store, as this does). */
  auditWith(audit: AuditService): this {
    this.audit = audit;
    return this;
  }

  override async create(name: string, settings: Record<string, unknown>, apiKey?: string): Promise<{ app: AppRecord; apiKey: string; keyId: string; credentials: DialectCredentials }> {
    const created = await super.create(name, settings, apiKey);
    await this.audit?.recordNow(created.app, 'app.created', { resource: created.app.id, details: { name, keyId: created.keyId } }, NO_REQUEST);
    return created;
  }

  override async update(name: string, changes: Parameters<AppsService['update']>[1]): Promise<AppRecord> {
    const app = await super.update(name, changes);
    // The names of the settings changed, not their values (a webhook URL may carry a token).
    await this.audit?.recordNow(app, 'app.updated', { resource: app.id, details: { settings: Object.keys(changes).join(',') } }, NO_REQUEST);
    return app;
  }

  override async delete(name: string): Promise<void> {
    const app = await this.get(name);
    await super.delete(name);
    await this.audit?.recordNow(app, 'app.deleted', { resource: app.id, details: { name } }, NO_REQUEST);
  }

  override async createKey(appName: string): Promise<IssuedKey> {
    const issued = await super.createKey(appName);
    await this.audit?.recordNow(await this.get(appName), 'key.created', { resource: issued.id }, NO_REQUEST);
    return issued;
  }

  override async revokeKey(keyId: string): Promise<void> {
    // The key's app, found before the revocation (admin actions are rare; apps are few).
    let owner: AppRecord | undefined;
    for (const app of await this.list()) {
      if ((await this.listKeys(app.name)).some((key) => key.id === keyId)) {
        owner = app;
        break;
      }
    }
    await super.revokeKey(keyId);
    if (owner) await this.audit?.recordNow(owner, 'key.revoked', { resource: keyId }, NO_REQUEST);
  }
}
