import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../core/codes.js';
import type { Channel } from '../core/destination.js';
import type { DeliveryStatus } from '../core/verification.js';
import { basicAuth, isTransientStatus, joinUrl, providerFetch, shortReason } from './http.js';
import { escapeHtml } from './templates.js';
import {
  CallbackAuthError,
  DeliveryError,
  type DeliveryProvider,
  type OutboundMessage,
  type Receipt,
  type ReceiptHandler,
  type SendResult,
} from './provider.js';

export interface TwilioConfig {
  type: 'twilio';
  accountSid: string;
  /** Signs status callbacks (X-Twilio-Signature), and authenticates requests unless an API key is given. */
  authToken: string;
  apiKeySid?: string;
  apiKeySecret?: string;
  /** Sender for SMS (and voice unless `voiceFrom`). */
  from?: string;
  messagingServiceSid?: string;
  /** WhatsApp sender number (E.164, without the `whatsapp:` prefix). */
  whatsappFrom?: string;
  /** An approved WhatsApp Content template whose variable `1` is the code (business-initiated messages need one). */
  whatsappContentSid?: string;
  voiceFrom?: string;
  /** `<Say voice>`, e.g. `Polly.Joanna`; Twilio's default voice when unset. */
  voice?: string;
  baseUrl: string;
  timeoutMs: number;
}

/**
 * Twilio (https://www.twilio.com/docs/messaging/api/message-resource, …/voice/api/call-resource):
 * SMS and WhatsApp through `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, voice through
 * `…/Calls.json` with inline TwiML that reads the code. Both take form-encoded parameters with HTTP Basic
 * authentication and answer 201 with the resource (`sid`, `status`) or an error object (`code`,
 * `message`). Status callbacks are form posts signed with X-Twilio-Signature.
 */
export class TwilioProvider implements DeliveryProvider {
  readonly channels: Channel[];
  readonly receipts: ReceiptHandler;

  constructor(
    readonly name: string,
    private readonly config: TwilioConfig,
  ) {
    const channels: Channel[] = [];
    if (config.from || config.messagingServiceSid) channels.push('sms');
    if (config.whatsappFrom || config.messagingServiceSid) channels.push('whatsapp');
    if (config.voiceFrom || config.from) channels.push('voice');
    this.channels = channels;
    this.receipts = {
      authenticate: (request) => {
        if (!validTwilioSignature(config.authToken, request.publicUrl, request.form ?? {}, request.headers['x-twilio-signature'])) {
          throw new CallbackAuthError(`${name}: X-Twilio-Signature does not match`);
        }
      },
      parse: (request) => parseTwilioCallback(request.form ?? request.query),
    };
  }

  private authorization(): string {
    const { apiKeySid, apiKeySecret, accountSid, authToken } = this.config;
    return apiKeySid && apiKeySecret ? basicAuth(apiKeySid, apiKeySecret) : basicAuth(accountSid, authToken);
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const form = new URLSearchParams();
    let resource: string;
    if (message.channel === 'voice') {
      resource = 'Calls.json';
      form.set('To', message.to);
      form.set('From', this.config.voiceFrom ?? this.config.from!);
      form.set('Twiml', this.twiml(message));
    } else if (message.channel === 'sms' || message.channel === 'whatsapp') {
      resource = 'Messages.json';
      const whatsapp = message.channel === 'whatsapp';
      form.set('To', whatsapp ? `whatsapp:${message.to}` : message.to);
      const from = whatsapp ? this.config.whatsappFrom : this.config.from;
      if (from) form.set('From', whatsapp ? `whatsapp:${from}` : from);
      else form.set('MessagingServiceSid', this.config.messagingServiceSid!);
      if (whatsapp && this.config.whatsappContentSid) {
        form.set('ContentSid', this.config.whatsappContentSid);
        form.set('ContentVariables', JSON.stringify({ 1: message.code }));
      } else {
        form.set('Body', message.text);
      }
    } else {
      throw new DeliveryError(`${this.name}: twilio does not send ${message.channel}`, false);
    }
    if (message.callbackUrl) form.set('StatusCallback', message.callbackUrl);

    const url = joinUrl(this.config.baseUrl, `/2010-04-01/Accounts/${encodeURIComponent(this.config.accountSid)}/${resource}`);
    const response = await providerFetch(
      this.name,
      url,
      { method: 'POST', headers: { authorization: this.authorization(), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() },
      { timeoutMs: this.config.timeoutMs },
    );
    const body = (response.json ?? {}) as { sid?: unknown; status?: unknown; code?: unknown; message?: unknown };
    if (response.status < 200 || response.status >= 300) {
      const detail = typeof body.message === 'string' ? `${body.code ?? ''} ${body.message}`.trim() : shortReason(response.text);
      throw new DeliveryError(`${this.name}: HTTP ${response.status}${detail ? ` (${shortReason(detail)})` : ''}`, isTransientStatus(response.status));
    }
    if (typeof body.sid !== 'string' || body.sid === '') throw new DeliveryError(`${this.name}: answer without a sid`, true);
    if (body.status === 'failed' || body.status === 'canceled') throw new DeliveryError(`${this.name}: message ${body.status} on creation`, false);
    return { status: 'sent', providerMessageId: body.sid };
  }

  private twiml(message: OutboundMessage): string {
    const voice = this.config.voice ? ` voice="${escapeHtml(this.config.voice)}"` : '';
    const language = message.voiceLanguage ? ` language="${escapeHtml(message.voiceLanguage)}"` : '';
    return `<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="1"/><Say${voice}${language}>${escapeHtml(message.text)}</Say></Response>`;
  }
}

/**
 * Twilio's request signature: HMAC-SHA1 under the auth token of the full URL followed by every POST
 * parameter name and value, sorted by name, Base64 (https://www.twilio.com/docs/usage/security).
 */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  let data = url;
  for (const key of Object.keys(params).sort()) data += key + params[key];
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

export function validTwilioSignature(authToken: string, url: string, params: Record<string, string>, signature: string | undefined): boolean {
  if (!signature) return false;
  return constantTimeEqual(twilioSignature(authToken, url, params), signature);
}

const MESSAGE_STATUS: Record<string, DeliveryStatus> = {
  accepted: 'sent',
  scheduled: 'sent',
  queued: 'sent',
  sending: 'sent',
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  canceled: 'failed',
};

const CALL_STATUS: Record<string, DeliveryStatus> = {
  queued: 'sent',
  initiated: 'sent',
  ringing: 'sent',
  'in-progress': 'sent',
  completed: 'delivered',
  busy: 'undelivered',
  'no-answer': 'undelivered',
  canceled: 'undelivered',
  failed: 'failed',
};

function parseTwilioCallback(params: Record<string, string>): Receipt[] {
  if (params.MessageSid && params.MessageStatus) {
    const status = MESSAGE_STATUS[params.MessageStatus];
    if (!status) return [];
    const failureReason = status === 'failed' || status === 'undelivered' ? `twilio ${params.MessageStatus}${params.ErrorCode ? ` (error ${params.ErrorCode})` : ''}` : null;
    return [{ providerMessageId: params.MessageSid, status, failureReason }];
  }
  if (params.CallSid && params.CallStatus) {
    const status = CALL_STATUS[params.CallStatus];
    if (!status) return [];
    return [{ providerMessageId: params.CallSid, status, failureReason: status === 'delivered' || status === 'sent' ? null : `call ${params.CallStatus}` }];
  }
  return [];
}
