import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { OutboxOptions } from '../config-file.js';
import { isE164 } from '../core/destination.js';
import { isVerificationId } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import { pooledRandomBytes } from '../core/random.js';
import type { OutboxLease, OutboxStore } from '../store/outbox.js';
import type { AppRecord, DeliveryUpdate } from '../store/store.js';
import { callbackPath } from './callback-token.js';
import { describeFailures, sendAlongRoute } from './failover.js';
import { openPayload, type OutboxPayload } from './outbox-payload.js';
import type { DeliveryProvider, OutboundMessage } from './provider.js';
import type { ProviderRegistry } from './registry.js';
import { routeFor, stepLabel, type RouteStep } from './routing.js';
import { MAX_SMS_SEGMENTS, SMS_RETRIEVER_MAX_BYTES } from './segments.js';
import { renderMessage, type CustomTemplates } from './templates.js';

/** What the worker reads afresh for every message, so a reload (SIGHUP) applies to the next one. */
export interface DeliveryState {
  registry: ProviderRegistry;
  options: OutboxOptions;
  templates: CustomTemplates;
  appTemplates(appName: string): CustomTemplates | undefined;
  devOutbox: boolean;
  /** Base URL providers call back on; empty until the server has bound its port. */
  publicUrl: string;
}

/** What the worker needs from the services layer. */
export interface OutboxHooks {
  app(appId: string): Promise<AppRecord | undefined>;
  /** `sent`: the lease of the message reported on, wiped in the same store step (Store `recordDelivery`). */
  report(appId: string, verificationId: string, update: DeliveryUpdate, sent?: OutboxLease): Promise<void>;
  /** Maps provider message ids to the verification, for delivery receipts. */
  rememberReceipt(provider: string, providerMessageIds: string[], target: { appId: string; verificationId: string; send: number }, expiresAt: number): Promise<void>;
}

/** How long `drain` keeps sending what is due before it gives the rest to the next process. */
const DRAIN_LIMIT_MS = 8_000;

/**
 * The outbox worker, one per otpd process. It polls the store for due messages (and right after a local
 * create), leases them so no two processes send one message at once, decrypts each, walks the failover
 * route, reports the outcome through `recordDeliveryStatus`, and deletes the message once a provider took
 * it. Transient failures are retried with exponential backoff and jitter; after the last try, or a
 * permanent failure on every step, the verification's delivery is `failed` with the reasons.
 *
 * A crash while sending leaves the message leased; when the lease runs out another process (or this one,
 * restarted) claims it and sends it again, under the same message id, which providers that support an
 * idempotency key use to drop the duplicate.
 */
export class OutboxWorker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling: Promise<number> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** Sending slots taken by messages being written already leased (`reserve`), not yet in flight. */
  private reserved = 0;
  /**
   * Messages sent from memory (`sendLeased`) that have not reached a provider yet, by reference. No claim
   * reads their verification's state before the send, so a verification canceled, superseded or resent in
   * that window says so here (`withdraw`) and its message is dropped unsent, as a claimed one would be.
   */
  private readonly unsent = new Map<string, { withdrawn: boolean }>();
  private warnedStore = 0;
  /** A kick arrived while a poll was under way: poll again right after it, the new message may have missed it. */
  private kicked = false;
  /** Told about every provider call (src/metrics.ts times them). */
  observer: ((provider: string, status: string, seconds: number) => void) | undefined;

  constructor(
    private readonly store: OutboxStore,
    private readonly keyring: Keyring,
    private readonly state: () => DeliveryState,
    private readonly hooks: OutboxHooks,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {}

  /** Starts polling (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Takes a sending slot for a message this process is about to write already leased to itself
   * (`OutboxMessage.lease`), so it can send it straight after the write with no claim and no decryption.
   * False when every slot is busy: the message is then written due, for a later claim. Every slot taken is
   * given back by `sendLeased` or, when the write did not happen, by `release`.
   */
  reserve(): boolean {
    if (this.freeSlots() <= 0) return false;
    this.reserved++;
    return true;
  }

  /** Gives back a slot from `reserve` whose message was not written. */
  release(): void {
    this.reserved = Math.max(0, this.reserved - 1);
  }

  /**
   * Sends a message written already leased to this process (its slot from `reserve`), with the plaintext the
   * writer sealed, as if this worker had just claimed it. Starts the worker if needed, as `kick` does.
   */
  sendLeased(lease: OutboxLease, payload: OutboxPayload): void {
    this.release();
    if (!this.running) this.start();
    // A resend's message replaces the one of its verification still on its way here.
    this.withdraw(lease.reference);
    const entry = { withdrawn: false };
    this.unsent.set(lease.reference, entry);
    this.track(
      this.process(lease, payload, entry).finally(() => {
        if (this.unsent.get(lease.reference) === entry) this.unsent.delete(lease.reference);
      }),
    );
  }

  /** The verification `reference` no longer waits for its message: one sent from memory that has not reached a provider is dropped. */
  withdraw(reference: string): void {
    const entry = this.unsent.get(reference);
    if (entry) entry.withdrawn = true;
  }

  /** A message was just queued here: look now rather than at the next tick (starts the worker if needed). */
  kick(): void {
    if (!this.running) {
      this.start();
      return;
    }
    if (this.polling) this.kicked = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, delayMs);
    // Polling alone must not keep a process alive (the HTTP server does that).
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.kicked = false;
    const claimed = await this.pollOnce();
    if (!this.running) return;
    const more = (claimed > 0 || this.kicked) && this.freeSlots() > 0;
    this.schedule(more ? 0 : this.state().options.pollIntervalMs);
  }

  /** Claims what is due (up to the free capacity) and starts sending it; returns how many were claimed. */
  private pollOnce(): Promise<number> {
    // Checked before the poll starts: an async function that returns before its first await runs its
    // `finally` at once, so `this.polling` would be cleared before `??=` stored it and would then keep a
    // settled promise for good: every later kick and poll would see a poll "under way" and nothing would
    // be claimed again (found by `npm run bench`, docs/performance.md).
    if (!this.polling && this.freeSlots() <= 0) return Promise.resolve(0);
    this.polling ??= (async () => {
      try {
        const capacity = this.freeSlots();
        const leases = await this.store.claimOutbox(this.clock(), this.state().options.leaseMs, capacity, pooledRandomBytes(12).toString('base64url'));
        for (const lease of leases) this.track(this.process(lease));
        this.warnedStore = 0;
        return leases.length;
      } catch (error) {
        // The store is down: keep polling at the normal pace; say so once a minute at most.
        if (this.clock() - this.warnedStore > 60_000) {
          this.warnedStore = this.clock();
          this.logger.warn({ err: error }, 'outbox: cannot claim messages');
        }
        return 0;
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  /** Sending slots left (`outbox.concurrency` in the config file, read afresh so a reload applies). */
  private freeSlots(): number {
    return this.state().options.concurrency - this.inFlight.size - this.reserved;
  }

  private track(task: Promise<void>): void {
    const tracked = task
      .catch((error: unknown) => this.logger.error({ err: error }, 'outbox: message processing failed'))
      .finally(() => {
        this.inFlight.delete(tracked);
        // Capacity freed: there may be more waiting.
        if (this.running && this.freeSlots() === 1) this.schedule(0);
      });
    this.inFlight.add(tracked);
  }

  /**
   * Sends what is due now and waits for every send in flight, then stops polling (shutdown, tests). Bounded:
   * after DRAIN_LIMIT_MS the rest stays in the outbox for the next process. A later `kick` starts again.
   */
  async drain(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + DRAIN_LIMIT_MS;
    while (Date.now() < deadline) {
      if (this.polling) await this.polling;
      // A poll with every slot busy claims nothing without looking; the sends in flight may all finish
      // before it answers (they only wait on microtasks once their commit is in), so "nothing claimed,
      // nothing in flight" means the outbox is empty only when the poll did look.
      // A message being written already leased is sent by this worker once its write is in: wait for it too.
      const looked = this.freeSlots() > 0;
      const claimed = await this.pollOnce();
      if (looked && claimed === 0 && this.inFlight.size === 0 && this.reserved === 0) break;
      // A write still under way commits on a later turn (a timer lets it): waiting on microtasks alone would not.
      const pending: Promise<unknown>[] = [...this.inFlight];
      if (this.reserved > 0) pending.push(new Promise((resolve) => setTimeout(resolve, 1)));
      await Promise.race([Promise.allSettled(pending), new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())]);
    }
  }

  /** `wipe`: the message is done with; it goes in the same store step as the report. */
  private async report(lease: OutboxLease, update: DeliveryUpdate, wipe = false): Promise<void> {
    if (!isVerificationId(lease.reference)) {
      if (wipe) await this.store.completeOutbox(lease);
      return;
    }
    try {
      await this.hooks.report(lease.appId, lease.reference, update, wipe ? lease : undefined);
    } catch (error) {
      // With `wipe`, the message stays too: it is sent again after its lease, under the same message id.
      this.logger.error({ err: error, verificationId: lease.reference }, 'outbox: could not record delivery status');
    }
  }

  /**
   * `plaintext`: the payload of a message this process wrote already leased (`sendLeased`), else it is
   * decrypted; `unsent`: that message's entry, which `withdraw` marks.
   */
  private async process(lease: OutboxLease, plaintext?: OutboxPayload, unsent?: { withdrawn: boolean }): Promise<void> {
    let payload: OutboxPayload;
    try {
      payload = plaintext ?? openPayload(this.keyring, lease.id, lease.payload);
    } catch (error) {
      this.logger.error({ err: error, messageId: lease.id, verificationId: lease.reference }, 'outbox: message cannot be decrypted');
      await this.report(lease, { status: 'failed', failureReason: 'the queued message cannot be decrypted with the configured server secret', failVerification: true }, true);
      return;
    }
    const now = this.clock();
    if (isVerificationId(lease.reference)) {
      // The claim read the verification in the same step as the lease (OutboxLease.verification).
      const verification = lease.verification;
      // Canceled, approved, superseded, resent (a newer message replaces this one), or gone: nothing to send.
      if (!verification || verification.status !== 'pending' || verification.sends !== lease.send) {
        await this.store.completeOutbox(lease);
        return;
      }
    }
    if (now >= lease.expiresAt) {
      await this.report(lease, { status: 'failed', failureReason: `the code expired before a provider took the message${lease.lastError ? ` (last error: ${lease.lastError})` : ''}`, send: lease.send }, true);
      return;
    }
    const app = await this.hooks.app(lease.appId);
    if (!app || unsent?.withdrawn) {
      await this.store.completeOutbox(lease);
      return;
    }

    const state = this.state();
    const steps = routeFor(app.settings, payload.channel, state.devOutbox);
    const outcome = await sendAlongRoute(steps, {
      lookup: (name) => state.registry.get(name),
      compose: (step) => this.compose(app, lease, payload, step, state),
      beforeStep: () => this.holdLease(lease),
      observe: (provider, status, seconds) => this.observer?.(provider, status, seconds),
    });

    if (outcome.ok) {
      const ids = [outcome.result.providerMessageId, ...(outcome.result.otherMessageIds ?? [])].filter((id): id is string => typeof id === 'string' && id !== '');
      if (outcome.provider.receipts && ids.length > 0 && isVerificationId(lease.reference)) {
        await this.hooks
          .rememberReceipt(outcome.provider.name, ids, { appId: lease.appId, verificationId: lease.reference, send: lease.send }, lease.expiresAt)
          .catch((error: unknown) => this.logger.warn({ err: error, verificationId: lease.reference }, 'outbox: could not remember the provider message id; its receipts will be ignored'));
      }
      if (outcome.failures.length > 0) this.logger.warn({ verificationId: lease.reference, failures: outcome.failures.map((f) => f.reason) }, 'outbox: delivered after failover');
      // Wiped and reported in one store step: a crash keeps both or neither, and a message kept is sent
      // again after its lease, under the same message id, as after a crash during the send.
      await this.report(
        lease,
        { status: outcome.result.status, provider: stepLabel(outcome.step, payload.channel), providerMessageId: outcome.result.providerMessageId ?? null, failureReason: null, send: lease.send },
        true,
      );
      return;
    }
    // The lease went to another process while this one waited: that one decides now.
    if (outcome.stopped) return;

    const reason = describeFailures(outcome.failures);
    const { maxTries } = state.options;
    const retryAt = this.clock() + this.backoff(lease.tries, state.options);
    if (outcome.transient && lease.tries < maxTries && retryAt < lease.expiresAt) {
      this.logger.warn({ verificationId: lease.reference, tries: lease.tries, reason }, 'outbox: send failed; will retry');
      if (await this.store.rescheduleOutbox(lease, retryAt, reason, this.clock())) {
        await this.report(lease, { status: 'queued', failureReason: `try ${lease.tries} of ${maxTries} failed, retrying: ${reason}`, send: lease.send });
      }
      return;
    }
    const why = outcome.transient ? (lease.tries >= maxTries ? `gave up after ${lease.tries} tries: ` : 'gave up, the code expires before the next try: ') : '';
    this.logger.warn({ verificationId: lease.reference, tries: lease.tries, reason }, 'outbox: delivery failed');
    await this.report(lease, { status: 'failed', failureReason: why + reason, failVerification: true, send: lease.send }, true);
  }

  /**
   * Exponential backoff with jitter: a random delay between half and all of base·2^(tries-1), capped, so
   * the retries of messages that failed together spread out instead of hitting the provider together.
   */
  private backoff(tries: number, options: OutboxOptions): number {
    const ceiling = Math.round(Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** Math.min(30, tries - 1)));
    const half = Math.floor(ceiling / 2);
    return Math.max(1, half + randomInt(0, ceiling - half + 1));
  }

  /** Renews the lease when less than half of it is left, so a slow route cannot outlive it. */
  private async holdLease(lease: OutboxLease): Promise<boolean> {
    const now = this.clock();
    const leaseMs = this.state().options.leaseMs;
    if (lease.leaseUntil - now > leaseMs / 2) return true;
    try {
      if (!(await this.store.renewOutbox(lease, leaseMs, now))) return false;
      lease.leaseUntil = now + leaseMs;
      return true;
    } catch {
      return false;
    }
  }

  private compose(app: AppRecord, lease: OutboxLease, payload: OutboxPayload, step: RouteStep, state: DeliveryState): OutboundMessage | { refused: string } {
    const phone = isE164(payload.to);
    if ((step.channel === 'email') === phone) return { refused: `${step.provider}: cannot send ${step.channel} to ${phone ? 'a phone number' : 'an email address'}` };
    const minutes = Math.max(1, Math.ceil((lease.expiresAt - this.clock()) / 60_000));
    const rendered = renderMessage({
      appName: app.name,
      code: payload.code,
      minutes,
      channel: step.channel,
      locale: payload.locale,
      defaultLocale: app.settings.defaultLocale,
      link: payload.link,
      smsAppHash: app.settings.smsAppHash,
      templates: { app: state.appTemplates(app.name), global: state.templates },
    });
    if (rendered.segments && rendered.segments.segments > MAX_SMS_SEGMENTS) {
      return { refused: `the SMS text is ${rendered.segments.segments} ${rendered.segments.encoding} segments; at most ${MAX_SMS_SEGMENTS} are sent` };
    }
    if (rendered.segments && app.settings.smsAppHash && rendered.segments.bytes > SMS_RETRIEVER_MAX_BYTES) {
      this.logger.warn({ app: app.name, locale: rendered.locale, bytes: rendered.segments.bytes }, 'SMS with an app hash is longer than the 140 bytes the Android SMS Retriever reads');
    }
    const provider: DeliveryProvider | undefined = state.registry.get(step.provider);
    const message: OutboundMessage = {
      verificationId: lease.reference,
      appId: app.id,
      appName: app.name,
      channel: step.channel,
      to: payload.to,
      code: payload.code,
      locale: rendered.locale,
      text: rendered.text,
      subject: rendered.subject,
      messageId: lease.id,
      html: rendered.html,
      voiceLanguage: rendered.voiceLanguage,
      segments: rendered.segments,
      minutes,
      link: payload.link,
    };
    if (provider?.receipts && state.publicUrl) message.callbackUrl = state.publicUrl + callbackPath(provider.name);
    return message;
  }
}
