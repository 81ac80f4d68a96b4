import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { DEFAULT_OUTBOX_OPTIONS, type FileConfig } from '../config-file.js';
import type { Channel } from '../core/destination.js';
import { isVerificationId, newId } from '../core/ids.js';
import type { Keyring } from '../core/keyring.js';
import { pooledRandomBytes } from '../core/random.js';
import { OtpdError } from '../errors.js';
import type { OutboxLease, OutboxMessage, OutboxStore, OutboxVerificationState } from '../store/outbox.js';
import type { Store } from '../store/store.js';
import { OutboxWorker, type DeliveryState, type OutboxHooks } from './outbox-worker.js';
import { sealPayload, type OutboxPayload } from './outbox-payload.js';
import { CallbackAuthError, type CallbackRequest } from './provider.js';
import { buildRegistry, type ProviderRegistry } from './registry.js';

/** A message to queue: what the outbox encrypts, plus where it belongs. */
export interface QueuedSend {
  appId: string;
  /** The verification id (or another reference, such as a seed-001 time-window code's). */
  reference: string;
  to: string;
  channel: Channel;
  code: string;
  locale: string | null;
  link: string | null;
  /** The verification's `sends` for this message (1 for the first). */
  send: number;
  expiresAt: number;
}

/**
 * A message ready to be written (`message`, sealed), and what its writer needs to send it itself once the
 * write is in (`Delivery.dispatch`): every prepared message ends in `dispatch` or, unwritten, `abandon`.
 */
export interface PreparedSend {
  readonly message: OutboxMessage;
  /** The plaintext, kept only when `message` is written already leased to this process. */
  readonly payload: OutboxPayload | undefined;
}

export interface CallbackOutcome {
  /** Receipts that matched a verification and were recorded. */
  recorded: number;
  /** Receipts for messages otpd does not know (or no longer keeps). */
  ignored: number;
  reply: { status: number; contentType: string; body: string };
}

/** Store records mapping a provider's message id to its verification, for receipts. */
const RECEIPT_NAMESPACE = 'delivery-receipt';
/** Receipts may arrive long after the code expired (carriers retry for a day or more). */
const RECEIPT_GRACE_MS = 48 * 3_600_000;

/**
 * Delivery: the provider registry, the outbox worker, provider callbacks and reloads. Services queue
 * messages with `queue` (in the same store step as their verification) and `kick` the worker.
 */
export class Delivery {
  private registry: ProviderRegistry;
  private file: FileConfig | undefined;
  private publicUrl: string;
  private readonly report: OutboxHooks['report'];
  readonly worker: OutboxWorker;

  constructor(
    private readonly config: Config,
    private readonly store: Store & OutboxStore,
    private readonly keyring: Keyring,
    hooks: Omit<OutboxHooks, 'rememberReceipt'>,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {
    this.file = config.file;
    this.registry = buildRegistry(config, this.file, keyring, clock);
    this.publicUrl = config.publicUrl ?? '';
    const rememberReceipt: OutboxHooks['rememberReceipt'] = async (provider, ids, target, expiresAt) => {
      const now = this.clock();
      const ttlMs = Math.max(0, expiresAt - now) + RECEIPT_GRACE_MS;
      for (const id of ids) await this.store.putRecord(RECEIPT_NAMESPACE, `${provider}:${id}`, target, { ttlMs }, now);
    };
    this.report = hooks.report;
    this.worker = new OutboxWorker(store, keyring, () => this.state(), { ...hooks, rememberReceipt }, clock, logger);
  }

  private state(): DeliveryState {
    const file = this.file;
    return {
      registry: this.registry,
      options: file?.outbox ?? DEFAULT_OUTBOX_OPTIONS,
      templates: file?.templates ?? {},
      appTemplates: (name) => file?.apps[name]?.templates,
      devOutbox: this.config.devOutbox !== undefined,
      publicUrl: this.publicUrl,
    };
  }

  /**
   * The outbox entry for a send: the message sealed under the `outbox` key, due now. When this process's
   * worker has a free slot the message is leased to it already (`OutboxMessage.lease`), so once written it
   * is sent from memory: no claim, no decryption (docs/performance.md). The sealed copy is still written
   * first, so a crash before the provider took it loses nothing: the lease runs out and a claim sends it.
   */
  prepare(send: QueuedSend, now: number): PreparedSend {
    const id = newId('msg', now);
    const payload: OutboxPayload = { v: 1, to: send.to, channel: send.channel, code: send.code, locale: send.locale, link: send.link };
    const message: OutboxMessage = { id, appId: send.appId, reference: send.reference, payload: sealPayload(this.keyring, id, payload), send: send.send, dueAt: now, expiresAt: send.expiresAt };
    if (!this.worker.reserve()) return { message, payload: undefined };
    message.lease = { token: pooledRandomBytes(12).toString('base64url'), until: now + this.state().options.leaseMs };
    return { message, payload };
  }

  /**
   * After the store step that wrote `prepared.message`: a message leased to this process is sent now, any
   * other wakes the worker. `written`: the verification as that step stored it (its `sends` numbers the
   * message), for a verification's message.
   */
  dispatch(prepared: PreparedSend, written?: OutboxVerificationState): void {
    const { message, payload } = prepared;
    if (!message.lease || !payload) {
      this.worker.kick();
      return;
    }
    const { lease: held, ...stored } = message;
    const lease: OutboxLease = { ...stored, send: written?.sends ?? stored.send, tries: 1, lastError: null, leaseToken: held.token, leaseUntil: held.until };
    if (isVerificationId(message.reference)) lease.verification = written ? { status: written.status, sends: written.sends } : null;
    this.worker.sendLeased(lease, payload);
  }

  /** The verification `reference` was canceled or superseded: its message, if still on its way from memory, is not sent. */
  withdraw(reference: string): void {
    this.worker.withdraw(reference);
  }

  /** The store step did not write `prepared.message` (refused, or failed): gives back its sending slot. */
  abandon(prepared: PreparedSend): void {
    if (prepared.message.lease) this.worker.release();
  }

  /** Queues a message that belongs to no verification (seed-001 time-window codes). */
  async queue(send: QueuedSend): Promise<void> {
    const now = this.clock();
    const prepared = this.prepare(send, now);
    try {
      await this.store.enqueueOutbox(prepared.message, now);
    } catch (error) {
      this.abandon(prepared);
      throw error;
    }
    this.dispatch(prepared);
  }

  /** Calls `listener` after every provider call with its duration and outcome (metrics). */
  onProviderCall(listener: (provider: string, status: string, seconds: number) => void): void {
    this.worker.observer = listener;
  }

  start(): void {
    this.worker.start();
  }

  setPublicUrl(url: string): void {
    this.publicUrl = url.replace(/\/+$/, '');
  }

  /** Sends what is due and waits for sends in flight (bounded), then stops polling. */
  async drain(): Promise<void> {
    await this.worker.drain();
  }

  /** Shutdown: waits for sends in flight and closes provider connections. */
  async close(): Promise<void> {
    await this.worker.drain();
    await this.registry.close();
  }

  /**
   * Applies a reloaded config file: new providers, templates and outbox options take effect for the next
   * message; sends in flight finish on the providers they started with, whose connections close after.
   */
  reload(file: FileConfig | undefined): void {
    const previous = this.registry;
    this.file = file;
    this.registry = buildRegistry(this.config, file, this.keyring, this.clock);
    // Give sends that hold the old providers time to finish before their pools close.
    setTimeout(() => void previous.close(), 120_000).unref();
  }

  /**
   * A provider's status callback: authenticated the way that provider signs (decisions 8), then each
   * receipt is matched to its verification through the record kept when the provider took the message.
   */
  async handleCallback(providerName: string, request: CallbackRequest): Promise<CallbackOutcome> {
    const provider = this.registry.get(providerName);
    if (!provider?.receipts) throw new OtpdError('NOT_FOUND', `no provider named ${providerName} takes status callbacks`);
    try {
      provider.receipts.authenticate(request);
    } catch (error) {
      if (error instanceof CallbackAuthError) {
        this.logger.warn({ provider: providerName, reason: error.message }, 'provider callback refused');
        throw new OtpdError('FORBIDDEN', `callback authentication failed for provider ${providerName}`);
      }
      throw error;
    }
    let recorded = 0;
    let ignored = 0;
    const now = this.clock();
    for (const receipt of provider.receipts.parse(request)) {
      const target = await this.store.getRecord<{ appId: string; verificationId: string; send: number }>(RECEIPT_NAMESPACE, `${providerName}:${receipt.providerMessageId}`, now);
      if (!target) {
        ignored++;
        continue;
      }
      await this.report(target.value.appId, target.value.verificationId, { status: receipt.status, failureReason: receipt.failureReason, send: target.value.send });
      recorded++;
    }
    return { recorded, ignored, reply: provider.receipts.reply ?? { status: 204, contentType: 'text/plain', body: '' } };
  }
}

export function createDelivery(config: Config, store: Store & OutboxStore, keyring: Keyring, hooks: Omit<OutboxHooks, 'rememberReceipt'>, clock: () => number, logger: Logger): Delivery {
  return new Delivery(config, store, keyring, hooks, clock, logger);
}
