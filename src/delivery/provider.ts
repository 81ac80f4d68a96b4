import type { Channel } from '../core/destination.js';
import type { DeliveryStatus } from '../core/verification.js';
import type { SmsSegments } from './segments.js';

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
  /**
   * otpd's id of this message (`msg_…`): the same on every retry of one send, so providers that accept an
   * idempotency key (the webhook provider's `webhook-id`, an email's Message-ID) can drop a duplicate.
   */
  messageId?: string;
  /** Minutes the code has left when sent, and the one-tap link: for providers that fill their own templates. */
  minutes?: number;
  link?: string | null;
  /** Email: the HTML body. */
  html?: string | null;
  /** Voice: the BCP 47 language for text-to-speech. */
  voiceLanguage?: string;
  /** SMS: encoding and parts of `text`. */
  segments?: SmsSegments | null;
  /** Where the provider should report delivery receipts (`/v1/providers/NAME/callbacks…`), when known. */
  callbackUrl?: string;
}

export interface SendResult {
  /** What the provider said right away: most accept (`queued`/`sent`) and report the rest by callback. */
  status: Extract<DeliveryStatus, 'queued' | 'sent' | 'delivered'>;
  providerMessageId?: string;
  /** Further ids a receipt may name (Vonage reports each part of a long SMS under its own id). */
  otherMessageIds?: string[];
}

/** A provider's status callback as the HTTP layer received it. */
export interface CallbackRequest {
  method: string;
  /** The URL the provider called, rebuilt on otpd's public URL (what Twilio signs). */
  publicUrl: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** The body exactly as received (signatures are over these bytes). */
  rawBody: string;
  /** `application/x-www-form-urlencoded` fields, when the body is a form. */
  form: Record<string, string> | undefined;
  /** The parsed body, when it is JSON. */
  json: unknown;
}

/** One status change a callback reports. */
export interface Receipt {
  providerMessageId: string;
  status: DeliveryStatus;
  failureReason: string | null;
}

/**
 * Status callbacks of a provider. `authenticate` checks the request the way the provider signs it (or the
 * secret token in the URL where it signs nothing, decisions 8) and throws when it fails; `parse` reads the
 * receipts it carries.
 */
export interface ReceiptHandler {
  authenticate(request: CallbackRequest): void;
  parse(request: CallbackRequest): Receipt[];
  /** What the provider expects as the answer (Twilio and Vonage: any 2xx, empty). */
  reply?: { status: number; contentType: string; body: string };
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
  /** Providers that report delivery receipts to `/v1/providers/NAME/callbacks`. */
  readonly receipts?: ReceiptHandler;
  /** Releases connections (SMTP pools) when the provider is replaced by a reload or at shutdown. */
  close?(): Promise<void>;
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

/** A callback that fails authentication: answered 401 without saying why beyond the provider's name. */
export class CallbackAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackAuthError';
  }
}
