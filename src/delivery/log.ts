import { CHANNELS } from '../core/destination.js';
import type { DeliveryProvider, OutboundMessage, SendResult } from './provider.js';

/**
 * The default provider: prints the message on stderr as a plain line, outside the JSON logger, so codes
 * never reach log pipelines (decisions 4). In production it prints that a message was sent, without it.
 */
export class LogProvider implements DeliveryProvider {
  readonly name = 'log';
  readonly channels = CHANNELS;

  constructor(
    private readonly production: boolean,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  ) {}

  async send(message: OutboundMessage): Promise<SendResult> {
    const body = this.production ? '(message body withheld in production)' : message.text;
    const parts = message.segments ? `, ${message.segments.segments} ${message.segments.encoding} segment${message.segments.segments === 1 ? '' : 's'}` : '';
    this.write(`[otpd log provider] ${message.channel} to ${message.to} (verification ${message.verificationId}${parts}): ${body}`);
    return { status: 'sent', providerMessageId: `log-${message.verificationId}-${Date.now()}` };
  }
}
