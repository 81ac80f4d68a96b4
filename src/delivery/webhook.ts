import { CHANNELS } from '../core/destination.js';
import { DELIVERY_STATUSES, type DeliveryStatus } from '../core/verification.js';
import { isTransientStatus, providerFetch, shortReason } from './http.js';
import {
  CallbackAuthError,
  DeliveryError,
  type DeliveryProvider,
  type OutboundMessage,
  type Receipt,
  type ReceiptHandler,
  type SendResult,
} from './provider.js';
import { signedHeaders, verifyProblem } from './standard-webhooks.js';
import { newId } from '../core/ids.js';

export interface WebhookConfig {
  type: 'webhook';
  url: string;
  /** `whsec_` + Base64: signs what otpd sends and what the receiver reports back. */
  secret: string;
  timeoutMs: number;
}

/** The JSON otpd posts for each message (docs/delivery.md). */
export interface WebhookMessageEvent {
  type: 'otp.message';
  timestamp: string;
  data: {
    messageId: string;
    verificationId: string;
    appId: string;
    appName: string;
    channel: string;
    to: string;
    code: string;
    text: string;
    subject: string;
    html: string | null;
    locale: string | null;
    minutes: number | null;
    link: string | null;
    segments: { encoding: string; segments: number } | null;
    callbackUrl: string | null;
  };
}

const ACCEPTED = new Set(['queued', 'sent', 'delivered']);

/**
 * Hands messages to any HTTPS endpoint: a signed JSON POST (Standard Webhooks headers), accepted when the
 * endpoint answers 2xx. The `webhook-id` is otpd's message id, the same on every retry of one send, so the
 * receiver can drop a duplicate. The answer may be `{"id": "…", "status": "sent"|"delivered"}`; later
 * status changes come back signed with the same secret to `/v1/providers/NAME/callbacks`.
 */
export class WebhookProvider implements DeliveryProvider {
  readonly channels = CHANNELS;
  readonly receipts: ReceiptHandler;

  constructor(
    readonly name: string,
    private readonly config: WebhookConfig,
    private readonly clock: () => number = Date.now,
  ) {
    this.receipts = {
      authenticate: (request) => {
        const problem = verifyProblem(config.secret, request.headers, request.rawBody, Math.floor(this.clock() / 1000));
        if (problem) throw new CallbackAuthError(`${name}: ${problem}`);
      },
      parse: (request) => parseWebhookReceipt(request.json),
    };
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const messageId = message.messageId ?? newId('msg');
    const event: WebhookMessageEvent = {
      type: 'otp.message',
      timestamp: new Date(this.clock()).toISOString(),
      data: {
        messageId,
        verificationId: message.verificationId,
        appId: message.appId,
        appName: message.appName,
        channel: message.channel,
        to: message.to,
        code: message.code,
        text: message.text,
        subject: message.subject,
        html: message.html ?? null,
        locale: message.locale,
        minutes: message.minutes ?? null,
        link: message.link ?? null,
        segments: message.segments ? { encoding: message.segments.encoding, segments: message.segments.segments } : null,
        callbackUrl: message.callbackUrl ?? null,
      },
    };
    const body = JSON.stringify(event);
    const headers = { 'content-type': 'application/json', accept: 'application/json', ...signedHeaders(this.config.secret, messageId, Math.floor(this.clock() / 1000), body) };
    const response = await providerFetch(this.name, this.config.url, { method: 'POST', headers, body }, { timeoutMs: this.config.timeoutMs });
    if (response.status < 200 || response.status >= 300) {
      throw new DeliveryError(`${this.name}: HTTP ${response.status}${response.text ? ` (${shortReason(response.text)})` : ''}`, isTransientStatus(response.status));
    }
    const answer = (response.json && typeof response.json === 'object' ? response.json : {}) as { id?: unknown; status?: unknown };
    const status = typeof answer.status === 'string' && ACCEPTED.has(answer.status) ? (answer.status as SendResult['status']) : 'sent';
    return { status, providerMessageId: typeof answer.id === 'string' && answer.id !== '' ? answer.id.slice(0, 200) : messageId };
  }
}

/** `{"type":"message.status","data":{"id","status","reason"}}`, or the same fields at the top level. */
function parseWebhookReceipt(json: unknown): Receipt[] {
  if (!json || typeof json !== 'object') return [];
  const root = json as Record<string, unknown>;
  const data = (root.data && typeof root.data === 'object' ? root.data : root) as Record<string, unknown>;
  const id = data.id ?? data.messageId;
  const status = data.status;
  if (typeof id !== 'string' || id === '' || typeof status !== 'string' || !(DELIVERY_STATUSES as readonly string[]).includes(status) || status === 'queued') return [];
  const reason = typeof data.reason === 'string' && data.reason !== '' ? shortReason(data.reason) : null;
  return [{ providerMessageId: id, status: status as DeliveryStatus, failureReason: status === 'failed' || status === 'undelivered' ? reason ?? `webhook reported ${status}` : null }];
}
