import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from '../core/codes.js';
import type { DeliveryStatus } from '../core/verification.js';
import { isTransientStatus, joinUrl, providerFetch, shortReason } from './http.js';
import {
  CallbackAuthError,
  DeliveryError,
  type CallbackRequest,
  type DeliveryProvider,
  type OutboundMessage,
  type Receipt,
  type ReceiptHandler,
  type SendResult,
} from './provider.js';
import { withToken } from './callback-token.js';

export const VONAGE_SIGNATURE_METHODS = ['md5hash', 'md5', 'sha1', 'sha256', 'sha512'] as const;
export type VonageSignatureMethod = (typeof VONAGE_SIGNATURE_METHODS)[number];

export interface VonageConfig {
  type: 'vonage';
  apiKey: string;
  apiSecret: string;
  /** Sender id or number. */
  from: string;
  /** With signed webhooks enabled on the account: the signature secret and method receipts are signed with. */
  signatureSecret?: string;
  signatureMethod: VonageSignatureMethod;
  /** Token in the receipt URL when receipts are not signed (decisions 8). */
  callbackToken: string;
  baseUrl: string;
  timeoutMs: number;
}

/** How far a signed receipt's `timestamp` may be from now (replay window). */
const SIGNATURE_MAX_AGE_S = 300;

/**
 * Vonage SMS API (https://developer.vonage.com/en/api/sms): `POST /sms/json` with `api_key`, `api_secret`,
 * `from`, `to` (international digits, no `+`), `text` and `type=unicode` for UCS-2 text. The answer lists
 * one object per part with `status` "0" for accepted, else an error code and `error-text` (1 throttled and
 * 5 internal error are worth retrying). A `callback` URL per message receives the delivery receipts (DLR).
 */
export class VonageProvider implements DeliveryProvider {
  readonly channels = ['sms'] as const;
  readonly receipts: ReceiptHandler;

  constructor(
    readonly name: string,
    private readonly config: VonageConfig,
    private readonly clock: () => number = Date.now,
  ) {
    this.receipts = {
      authenticate: (request) => this.authenticate(request),
      parse: (request) => parseVonageReceipt(receiptParams(request)),
    };
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const form = new URLSearchParams({
      api_key: this.config.apiKey,
      api_secret: this.config.apiSecret,
      from: this.config.from,
      to: message.to.replace(/^\+/, ''),
      text: message.text,
    });
    if (message.segments?.encoding === 'UCS-2') form.set('type', 'unicode');
    if (message.messageId) form.set('client-ref', message.messageId);
    if (message.callbackUrl) form.set('callback', this.config.signatureSecret ? message.callbackUrl : withToken(message.callbackUrl, this.config.callbackToken));
    const response = await providerFetch(
      this.name,
      joinUrl(this.config.baseUrl, '/sms/json'),
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() },
      { timeoutMs: this.config.timeoutMs },
    );
    if (response.status < 200 || response.status >= 300) {
      throw new DeliveryError(`${this.name}: HTTP ${response.status}${response.text ? ` (${shortReason(response.text)})` : ''}`, isTransientStatus(response.status));
    }
    const parts = (response.json as { messages?: Array<Record<string, unknown>> } | undefined)?.messages;
    if (!Array.isArray(parts) || parts.length === 0) throw new DeliveryError(`${this.name}: answer without messages`, true);
    const failed = parts.find((part) => String(part.status) !== '0');
    if (failed) {
      const status = String(failed.status);
      const text = typeof failed['error-text'] === 'string' ? failed['error-text'] : 'rejected';
      throw new DeliveryError(`${this.name}: status ${status} (${shortReason(text)})`, status === '1' || status === '5');
    }
    const ids = parts.map((part) => part['message-id']).filter((id): id is string => typeof id === 'string' && id !== '');
    if (ids.length === 0) throw new DeliveryError(`${this.name}: answer without message-id`, true);
    return { status: 'sent', providerMessageId: ids[0]!, otherMessageIds: ids.slice(1) };
  }

  private authenticate(request: CallbackRequest): void {
    const params = receiptParams(request);
    if (!this.config.signatureSecret) {
      if (!request.query.token || !constantTimeEqual(request.query.token, this.config.callbackToken)) throw new CallbackAuthError(`${this.name}: missing or wrong token`);
      return;
    }
    const { sig, ...signed } = params;
    if (!sig || !constantTimeEqual(sig.toLowerCase(), vonageSignature(signed, this.config.signatureSecret, this.config.signatureMethod))) {
      throw new CallbackAuthError(`${this.name}: sig does not match`);
    }
    const timestamp = Number(signed.timestamp);
    if (!Number.isFinite(timestamp) || Math.abs(this.clock() / 1000 - timestamp) > SIGNATURE_MAX_AGE_S) {
      throw new CallbackAuthError(`${this.name}: signed timestamp missing or older than ${SIGNATURE_MAX_AGE_S} s`);
    }
  }
}

/**
 * Vonage's signature of request parameters (https://developer.vonage.com/en/getting-started/concepts/signing-messages):
 * every parameter but `sig`, sorted by name, as `&name=value` with `&` and `=` inside values replaced by
 * `_`; `md5hash` is MD5 of that string followed by the secret, the others an HMAC under the secret. Hex.
 */
export function vonageSignature(params: Record<string, string>, secret: string, method: VonageSignatureMethod): string {
  let data = '';
  for (const key of Object.keys(params).sort()) data += `&${key}=${params[key]!.replace(/[&=]/g, '_')}`;
  if (method === 'md5hash') return createHash('md5').update(data + secret, 'utf8').digest('hex');
  return createHmac(method, secret).update(data, 'utf8').digest('hex');
}

/** A DLR arrives as a GET query, a form post or a JSON post (the account's webhook setting). */
function receiptParams(request: CallbackRequest): Record<string, string> {
  const source: Record<string, unknown> =
    request.form ?? (request.json && typeof request.json === 'object' && !Array.isArray(request.json) ? (request.json as Record<string, unknown>) : {});
  const out: Record<string, string> = {};
  const fromBody = Object.keys(source).length > 0;
  for (const [key, value] of Object.entries(fromBody ? source : request.query)) {
    if (key === 'token' && !fromBody) continue;
    if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
  }
  return out;
}

const DLR_STATUS: Record<string, DeliveryStatus> = {
  accepted: 'sent',
  buffered: 'sent',
  delivered: 'delivered',
  expired: 'undelivered',
  failed: 'failed',
  rejected: 'failed',
};

function parseVonageReceipt(params: Record<string, string>): Receipt[] {
  const id = params.messageId ?? params['message-id'];
  const status = params.status ? DLR_STATUS[params.status] : undefined;
  if (!id || !status) return [];
  const reason = status === 'delivered' || status === 'sent' ? null : `vonage ${params.status}${params['err-code'] && params['err-code'] !== '0' ? ` (err-code ${params['err-code']})` : ''}`;
  return [{ providerMessageId: id, status, failureReason: reason }];
}
