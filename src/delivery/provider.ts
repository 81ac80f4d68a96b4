import type { Channel } from '../core/destination.js';
import type { DeliveryStatus } from '../core/verification.js';

/** One message to one destination. The code travels only in memory, never into a log line. */
export interface OutboundMessage {
  verificationId: string;
  appId: string;
  appName: string;
  channel: Channel;
  to: string;
  code: string;
  locale: string | null;
  /** The rendered text (src/delivery/templates.ts). */
  text: string;
  subject: string;
}

export interface SendResult {
  /** What the provider said right away: most accept (`queued`/`sent`) and report the rest by callback. */
  status: Extract<DeliveryStatus, 'queued' | 'sent' | 'delivered'>;
  providerMessageId?: string;
}

/**
 * A delivery provider: one file each. `send` resolves once the provider has accepted the message and
 * rejects with a `DeliveryError` when it has not; later status changes arrive through the service's
 * `recordDeliveryStatus()` (decisions 11).
 */
export interface DeliveryProvider {
  readonly name: string;
  readonly channels: readonly Channel[];
  send(message: OutboundMessage): Promise<SendResult>;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** A transient failure (timeout, 5xx, 429) may be retried or failed over; a permanent one may not. */
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}
