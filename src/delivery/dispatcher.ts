import type { Logger } from 'pino';
import type { DeliveryUpdate } from '../store/store.js';
import { DeliveryError, type DeliveryProvider, type OutboundMessage } from './provider.js';

export type DeliveryReporter = (appId: string, verificationId: string, update: DeliveryUpdate) => Promise<void>;

/**
 * Hands messages to providers off the request path and reports each outcome through one callback (the
 * service's `recordDeliveryStatus`). The verification answers `delivery.status: queued` at once; the
 * provider's acceptance moves it to `sent` (or `delivered`), a provider error to `failed`.
 */
export class Dispatcher {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly providers: ReadonlyMap<string, DeliveryProvider>,
    private readonly report: DeliveryReporter,
    private readonly logger: Logger,
  ) {}

  dispatch(providerName: string, message: OutboundMessage): void {
    const task = this.deliver(providerName, message).finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  private async deliver(providerName: string, message: OutboundMessage): Promise<void> {
    const provider = this.providers.get(providerName);
    let update: DeliveryUpdate;
    if (!provider) {
      update = { status: 'failed', provider: providerName, failureReason: `no provider named ${providerName} is configured`, failVerification: true };
    } else if (!provider.channels.includes(message.channel)) {
      update = { status: 'failed', provider: provider.name, failureReason: `provider ${provider.name} does not send ${message.channel}`, failVerification: true };
    } else {
      try {
        const result = await provider.send(message);
        update = { status: result.status, provider: provider.name, providerMessageId: result.providerMessageId ?? null, failureReason: null };
      } catch (error) {
        const reason = error instanceof DeliveryError ? error.message : 'provider error';
        this.logger.warn({ verificationId: message.verificationId, provider: provider.name, err: error instanceof DeliveryError ? undefined : error }, 'delivery failed');
        update = { status: 'failed', provider: provider.name, failureReason: reason, failVerification: true };
      }
    }
    try {
      await this.report(message.appId, message.verificationId, update);
    } catch (error) {
      this.logger.error({ verificationId: message.verificationId, err: error }, 'could not record delivery status');
    }
  }

  /** Waits for messages already handed over (graceful shutdown, tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
