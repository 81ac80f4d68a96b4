import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { maskDestination } from '../core/destination.js';
import { newId } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import type { VerificationRecord } from '../core/verification.js';
import { SECRET_PREFIX, sign } from '../delivery/standard-webhooks.js';
import { OtpdError } from '../errors.js';
import type { AppRecord, NewQueuedEvent, QueuedEvent, Store } from '../store/store.js';
import type { AppOwnedRecords } from './app-records.js';
import type { RecordRewrap } from './secrets-rotation.js';

/**
 * Webhook events (docs/audit-and-events.md), in the Standard Webhooks format
 * (https://www.standardwebhooks.com): a JSON body `{type, timestamp, data}` POSTed with `webhook-id`,
 * `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` under the app's
 * `whsec_` secret.
 *
 * Durable and at-least-once: an event is written to the store's event queue first, and a worker in every
 * otpd process leases due events, POSTs them and deletes them on a 2xx. A failed attempt is retried on the
 * configured schedule; a process that dies mid-delivery loses only its lease, after which another process
 * (or itself, restarted) delivers again. So a receiver may see an event twice: the `webhook-id` is the same
 * on every attempt, for de-duplication.
 */
export const WEBHOOK_EVENT_TYPES = [
  'verification.approved',
  'verification.max_attempts_reached',
  'verification.expired',
  'delivery.failed',
  'factor.verified',
  'code.replayed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface EventsOptions {
  /** Delays after each failed attempt; an event gets `length + 1` attempts. */
  retryScheduleMs: number[];
  /** Deadline of one POST (answer included). */
  timeoutMs: number;
  /** How often an idle worker looks for events other processes queued or retries that came due. */
  pollMs?: number;
}

/** Why a queued event was given up. */
export type AbandonHandler = (appId: string, event: { id: string; type: string; attempts: number }, reason: string) => void;

interface StoredWebhookSecret {
  /** The `whsec_` secret, AES-256-GCM under the keyring (purpose `webhook-secret`, bound to the app id). */
  current: string;
  /** The secret replaced by the last rotation, still signing beside the new one until `previousUntil`. */
  previous: string | null;
  previousUntil: number | null;
}

const SECRETS = 'webhook-secret';
/** An app's webhook signing secret (record id = app id) goes with the app (`AppsService.delete`). */
export const WEBHOOK_SECRET_RECORDS: AppOwnedRecords = { namespace: SECRETS, ownerOf: (id) => id };
/** A queued timer, not an event: when due, it becomes `verification.expired` if the verification did expire. */
const EXPIRY_TIMER = 'timer:verification.expired';
/** An event is given up after this long whatever its attempts (the default schedule needs about 27 h). */
const EVENT_LIFETIME_MS = 3 * 86_400_000;
/** After a secret rotation, deliveries are signed with both secrets for a day (receivers switch meanwhile). */
const PREVIOUS_SECRET_GRACE_MS = 86_400_000;
const BATCH = 20;
const DEFAULT_POLL_MS = 1000;
const MAX_CAS_ROUNDS = 5;

/** The `data` of a verification event: what a receiver needs to act, the destination only masked. */
export function verificationEventData(verification: VerificationRecord, status: string = verification.status): Record<string, unknown> {
  return {
    verificationId: verification.id,
    status,
    channel: verification.channel,
    to: maskDestination(verification.to),
    attempts: verification.attempts,
    maxAttempts: verification.maxAttempts,
    sends: verification.sends,
    metadata: verification.metadata,
  };
}

export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

export class EventsService {
  private pending: NewQueuedEvent[] = [];
  private flushScheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Earliest retry this process scheduled, so the worker wakes for it rather than at the next poll. */
  private nextRetryAt = Number.POSITIVE_INFINITY;
  /** Set by the audit service: an abandoned event is an audit entry. */
  onAbandon: AbandonHandler | undefined;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
    private readonly logger: Logger,
    private readonly options: EventsOptions,
  ) {}

  // --- producing -----------------------------------------------------------------------------------

  /** Queues an event for the app's `webhookUrl` (nothing when it has none). Returns at once; see `flush`. */
  emit(app: AppRecord, type: WebhookEventType, data: Record<string, unknown>, id?: string): void {
    if (!app.settings.webhookUrl) return;
    const now = this.clock();
    const eventId = id ?? newId('evt', now);
    const payload = JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
    this.queue({ id: eventId, appId: app.id, type, payload, dueAt: now, expiresAt: now + EVENT_LIFETIME_MS });
  }

  /**
   * `verification.expired` has no request to happen in: a timer is queued for the verification's expiry
   * and, when due, turns into the event if the verification is still unanswered then (a resend moves it on).
   */
  scheduleExpiry(app: AppRecord, verification: VerificationRecord): void {
    if (!app.settings.webhookUrl) return;
    const payload = JSON.stringify({ verificationId: verification.id });
    this.queue({ id: `tmr_${verification.id}`, appId: app.id, type: EXPIRY_TIMER, payload, dueAt: verification.expiresAt, expiresAt: verification.expiresAt + EVENT_LIFETIME_MS });
  }

  /**
   * Events of one event-loop turn go to the store in one call (one SQLite group commit, one script per
   * event on Redis), off the request path: a process killed in that instant loses them (documented).
   */
  private queue(event: NewQueuedEvent): void {
    this.pending.push(event);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.writePending());
  }

  private writePending(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.track(
      this.store.enqueueEvents(batch, this.clock()).then(
        () => this.wake?.(),
        (error: unknown) => this.logger.error({ err: error, events: batch.map((e) => `${e.type} ${e.id}`) }, 'could not queue webhook events'),
      ),
    );
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  /** Resolves once every event emitted so far is in the store. */
  async flush(): Promise<void> {
    if (this.pending.length > 0) this.writePending();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  // --- the worker ----------------------------------------------------------------------------------

  /** Starts this process's delivery worker (the HTTP server does; CLI commands do not). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the worker after the deliveries under way, and writes what is still buffered. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    await this.flush();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let claimed = 0;
      try {
        claimed = await this.deliverDue();
      } catch (error) {
        this.logger.warn({ err: error }, 'webhook worker could not claim events');
      }
      if (!this.running) break;
      if (claimed >= BATCH) continue;
      const poll = this.options.pollMs ?? DEFAULT_POLL_MS;
      await this.sleep(Math.max(1, Math.min(poll, this.nextRetryAt - this.clock())));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** Leases the events due now and delivers them; returns how many were leased. */
  async deliverDue(): Promise<number> {
    const now = this.clock();
    if (this.nextRetryAt <= now) this.nextRetryAt = Number.POSITIVE_INFINITY;
    // The lease outlasts one attempt, so no other process takes an event while this one waits for an answer.
    const events = await this.store.claimEvents(now, this.options.timeoutMs * 3 + 5_000, BATCH);
    await Promise.all(events.map((event) => this.process(event)));
    return events.length;
  }

  private async process(event: QueuedEvent): Promise<void> {
    try {
      if (this.clock() >= event.expiresAt) return await this.abandon(event, event.lastError ?? 'expired before delivery');
      if (event.type === EXPIRY_TIMER) return await this.fireExpiryTimer(event);
      await this.deliver(event);
    } catch (error) {
      // A store outage: the lease runs out and the event is tried again later.
      this.logger.warn({ err: error, eventId: event.id }, 'webhook event could not be processed');
    }
  }

  private async fireExpiryTimer(timer: QueuedEvent): Promise<void> {
    const { verificationId } = JSON.parse(timer.payload) as { verificationId: string };
    const verification = await this.store.getVerification(timer.appId, verificationId);
    const now = this.clock();
    if (verification && verification.status === 'pending' && now < verification.expiresAt) {
      // Resent meanwhile: wait for the new expiry.
      await this.store.retryEvent(timer.id, verification.expiresAt, 'not expired yet');
      this.noteRetry(verification.expiresAt);
      return;
    }
    if (verification && (verification.status === 'pending' || verification.status === 'expired')) {
      const app = await this.store.getApp(timer.appId);
      if (app?.settings.webhookUrl) {
        const payload = JSON.stringify({ type: 'verification.expired', timestamp: new Date(verification.expiresAt).toISOString(), data: verificationEventData(verification, 'expired') });
        // Id derived from the timer's: if this process dies before completing the timer, the retry queues the same event, which the queue ignores.
        await this.store.enqueueEvents([{ id: `evt_expired_${verification.id}`, appId: app.id, type: 'verification.expired', payload, dueAt: now, expiresAt: now + EVENT_LIFETIME_MS }], now);
        this.wake?.();
      }
    }
    await this.store.completeEvent(timer.id);
  }

  private async deliver(event: QueuedEvent): Promise<void> {
    const app = await this.store.getApp(event.appId);
    const url = app?.settings.webhookUrl;
    if (!app || !url) {
      // The app or its webhook went away meanwhile: nobody to deliver to.
      await this.store.completeEvent(event.id);
      return;
    }
    const secrets = await this.signingSecrets(app);
    const timestamp = Math.floor(this.clock() / 1000);
    const signature = secrets.map((secret) => sign(secret, event.id, timestamp, event.payload)).join(' ');
    let failure: string;
    let permanent = false;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'otpd-webhooks',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature,
        },
        body: event.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) {
        await this.store.completeEvent(event.id);
        return;
      }
      failure = `HTTP ${response.status}`;
      // 410 Gone: the receiver asks to stop (as Svix and Standard Webhooks senders treat it).
      permanent = response.status === 410;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      failure = (error as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs / 1000} s` : `request failed (${cause ?? (error as Error).message})`;
    }
    const schedule = this.options.retryScheduleMs;
    if (permanent || event.attempts > schedule.length) {
      await this.abandon(event, failure);
      return;
    }
    const dueAt = this.clock() + schedule[event.attempts - 1]!;
    await this.store.retryEvent(event.id, dueAt, failure);
    this.noteRetry(dueAt);
    this.logger.info({ eventId: event.id, type: event.type, attempt: event.attempts, failure }, 'webhook delivery failed; will retry');
  }

  private noteRetry(at: number): void {
    this.nextRetryAt = Math.min(this.nextRetryAt, at);
  }

  private async abandon(event: QueuedEvent, reason: string): Promise<void> {
    await this.store.completeEvent(event.id);
    if (event.type === EXPIRY_TIMER) return;
    this.logger.warn({ eventId: event.id, type: event.type, appId: event.appId, attempts: event.attempts, reason }, 'webhook event abandoned');
    this.onAbandon?.(event.appId, event, reason);
  }

  // --- secrets -------------------------------------------------------------------------------------

  /** The app's webhook secret, created on first use; `rotate` replaces it (the old one keeps signing for a day). */
  async webhookSecret(app: AppRecord, options: { rotate?: boolean } = {}): Promise<{ secret: string; previousValidUntil: number | null }> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const now = this.clock();
      const stored = await this.store.getRecord<StoredWebhookSecret>(SECRETS, app.id, now);
      if (stored && !options.rotate) {
        const live = stored.value.previousUntil !== null && now < stored.value.previousUntil;
        return { secret: this.open(app, stored.value.current), previousValidUntil: live ? stored.value.previousUntil : null };
      }
      const secret = newWebhookSecret();
      const next: StoredWebhookSecret = stored
        ? { current: this.seal(app, secret), previous: stored.value.current, previousUntil: now + PREVIOUS_SECRET_GRACE_MS }
        : { current: this.seal(app, secret), previous: null, previousUntil: null };
      if ((await this.store.putRecord(SECRETS, app.id, next, { ifVersion: stored ? stored.version : null }, now)) !== undefined) {
        return { secret, previousValidUntil: next.previousUntil };
      }
    }
    throw new OtpdError('RATE_LIMITED', 'the webhook secret is being changed by another process; retry', { retryAfter: 1 });
  }

  /** Current secret first, then the previous one while its grace period lasts. */
  private async signingSecrets(app: AppRecord): Promise<string[]> {
    const now = this.clock();
    const stored = await this.store.getRecord<StoredWebhookSecret>(SECRETS, app.id, now);
    if (!stored) return [(await this.webhookSecret(app)).secret];
    const out = [this.open(app, stored.value.current)];
    if (stored.value.previous !== null && stored.value.previousUntil !== null && now < stored.value.previousUntil) out.push(this.open(app, stored.value.previous));
    return out;
  }

  private seal(app: AppRecord, secret: string): string {
    return this.keyring.encrypt('webhook-secret', secret, app.id);
  }

  private open(app: AppRecord, blob: string): string {
    return this.keyring.decrypt('webhook-secret', blob, app.id);
  }
}

/** `otpd secrets rotate`: webhook secrets re-encrypted under the current key (src/services/secrets-rotation.ts). */
export const WEBHOOK_SECRET_REWRAP: RecordRewrap<StoredWebhookSecret> = {
  namespace: SECRETS,
  rewrap(value, appId, keyring) {
    const stale = (blob: string | null): boolean => blob !== null && !blob.startsWith(keyring.currentKid + '.');
    if (!stale(value.current) && !stale(value.previous)) return undefined;
    const again = (blob: string): string => (stale(blob) ? keyring.encrypt('webhook-secret', keyring.decrypt('webhook-secret', blob, appId), appId) : blob);
    return { ...value, current: again(value.current), previous: value.previous === null ? null : again(value.previous) };
  },
};
