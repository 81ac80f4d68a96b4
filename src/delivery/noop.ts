import { CHANNELS } from '../core/destination.js';
import type { DeliveryProvider, OutboundMessage, SendResult } from './provider.js';

/**
 * The `noop` provider: accepts every message on every channel and sends nothing, writes nothing. For load
 * tests and benchmarks (`npm run bench`, docs/performance.md), where the provider's own cost (or the `log`
 * provider's stderr writes) would hide otpd's; an app selects it with `--set deliveryProvider=noop`.
 * Everything before the provider still runs: the outbox, its lease and wipe, the delivery report, the
 * audit entry. Nothing reaches a person, so an app on it never delivers a code.
 */
export class NoopProvider implements DeliveryProvider {
  readonly name = 'noop';
  readonly channels = CHANNELS;

  async send(message: OutboundMessage): Promise<SendResult> {
    return { status: 'sent', providerMessageId: `noop-${message.messageId ?? message.verificationId}` };
  }
}
