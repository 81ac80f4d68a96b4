import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './redis-process.js';

/**
 * Loopback stand-ins for the SMS/voice/WhatsApp providers otpd talks to, each answering the documented
 * request with the documented response (Twilio Messages and Calls, Vonage SMS API, MSG91 Flow API, a
 * Standard Webhooks receiver), and the matching callback senders (Twilio StatusCallback signed with
 * X-Twilio-Signature, Vonage DLR, MSG91 delivery report, a signed webhook report).
 *
 * Signatures here are computed by this file's own code from the providers' documentation, never with
 * otpd's, so a test that passes shows otpd agrees with the provider rather than with itself.
 */

export type FakeMode =
  /** Accept the message. */
  | 'ok'
  /** Answer 503 (a transient failure). */
  | 'unavailable'
  /** Answer the provider's "bad request" (a permanent failure). */
  | 'reject'
  /** Never answer (until the connection is closed): a timeout, or a crash mid-send. */
  | 'hang';

export interface FakeRequest {
  provider: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  form: Record<string, string> | undefined;
  json: any;
  /** A 2xx answer was sent: the provider took the message. */
  accepted: boolean;
  /** The client went away before an answer (otpd timed out, or died). */
  aborted: boolean;
  /** The JSON the fake answered with (the message's sid or id is in there). */
  answer: any;
}

export interface FakeProvider {
  name: string;
  /** The `baseUrl` (or `url` for the webhook) to configure in otpd. */
  baseUrl: string;
  mode: FakeMode;
  /** Modes for the next requests, used before `mode`. */
  queue: FakeMode[];
  requests: FakeRequest[];
  /** Requests that a 2xx answered. */
  accepted(): FakeRequest[];
}

export const TWILIO = { accountSid: 'AC' + '0123456789abcdef'.repeat(2), authToken: 'twilio-auth-token-0123456789abcdef' };
export const VONAGE = { apiKey: 'vonagekey', apiSecret: 'vonage-secret-123' };
export const MSG91 = { authKey: 'msg91-auth-key-0123456789' };
/** A Standard Webhooks secret: `whsec_` + Base64 of 32 bytes. */
export const WEBHOOK_SECRET = 'whsec_' + Buffer.alloc(32, 42).toString('base64');

type Handler = (provider: FakeProvider, request: FakeRequest, respond: (status: number, body: unknown) => void) => void;

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** Twilio's documented auth: HTTP Basic with the Account SID and Auth Token. */
function twilioHandler(provider: FakeProvider, request: FakeRequest, respond: (status: number, body: unknown) => void): void {
  const expected = 'Basic ' + Buffer.from(`${TWILIO.accountSid}:${TWILIO.authToken}`).toString('base64');
  if (request.headers.authorization !== expected) return respond(401, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
  const match = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/.exec(request.path);
  if (request.method !== 'POST' || !match || match[1] !== TWILIO.accountSid) return respond(404, { code: 20404, message: 'The requested resource was not found', status: 404 });
  const form = request.form ?? {};
  if (match[2] === 'Messages') {
    if (!form.To || (!form.From && !form.MessagingServiceSid) || (!form.Body && !form.ContentSid)) {
      return respond(400, { code: 21604, message: "A 'To', 'From' and 'Body' parameter is required to send a message.", status: 400 });
    }
    return respond(201, { sid: 'SM' + hex(16), account_sid: TWILIO.accountSid, to: form.To, from: form.From ?? null, body: form.Body ?? '', status: 'queued', num_segments: '1', direction: 'outbound-api' });
  }
  if (!form.To || !form.From || (!form.Twiml && !form.Url)) return respond(400, { code: 21205, message: 'Url parameter is required.', status: 400 });
  return respond(201, { sid: 'CA' + hex(16), account_sid: TWILIO.accountSid, to: form.To, from: form.From, status: 'queued', direction: 'outbound-api' });
}

/** Vonage SMS API: credentials in the form; HTTP 200 with a per-message status ("0" = accepted). */
function vonageHandler(provider: FakeProvider, request: FakeRequest, respond: (status: number, body: unknown) => void): void {
  const form = request.form ?? {};
  if (request.method !== 'POST' || request.path !== '/sms/json') return respond(404, { error: 'not found' });
  if (form.api_key !== VONAGE.apiKey || form.api_secret !== VONAGE.apiSecret) {
    return respond(200, { 'message-count': '1', messages: [{ status: '4', 'error-text': 'Bad Credentials' }] });
  }
  if (!form.from || !form.to || !form.text) return respond(200, { 'message-count': '1', messages: [{ status: '2', 'error-text': 'Missing to param' }] });
  if (form.to.startsWith('+')) return respond(200, { 'message-count': '1', messages: [{ status: '3', 'error-text': 'Invalid to address' }] });
  return respond(200, { 'message-count': '1', messages: [{ to: form.to, 'message-id': hex(8).toUpperCase(), status: '0', 'remaining-balance': '15.53590000', 'message-price': '0.03330000', network: '23410' }] });
}

/** MSG91 Flow API: `authkey` header, JSON body; `{"type":"success","message": request id}`. */
function msg91Handler(provider: FakeProvider, request: FakeRequest, respond: (status: number, body: unknown) => void): void {
  if (request.method !== 'POST' || request.path !== '/api/v5/flow') return respond(404, { type: 'error', message: 'not found' });
  if (request.headers.authkey !== MSG91.authKey) return respond(401, { type: 'error', message: 'AuthenticationFailure', code: '418' });
  const body = request.json;
  if (!body || typeof body.template_id !== 'string' || !Array.isArray(body.recipients) || typeof body.recipients[0]?.mobiles !== 'string') {
    return respond(400, { type: 'error', message: 'template_id and recipients are required' });
  }
  return respond(200, { type: 'success', message: hex(12) });
}

/** A Standard Webhooks receiver: checks the signature (its own implementation) and answers with an id. */
function webhookHandler(provider: FakeProvider, request: FakeRequest, respond: (status: number, body: unknown) => void): void {
  const id = request.headers['webhook-id'] ?? '';
  const timestamp = request.headers['webhook-timestamp'] ?? '';
  const key = Buffer.from(WEBHOOK_SECRET.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest('base64');
  const given = (request.headers['webhook-signature'] ?? '').split(' ').map((s) => s.replace(/^v1,/, ''));
  const valid = given.some((sig) => sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected)));
  if (!valid || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return respond(401, { error: 'bad signature' });
  return respond(200, { id: 'wh_' + hex(8), status: 'sent' });
}

const HANDLERS: Record<string, Handler> = { twilio: twilioHandler, vonage: vonageHandler, msg91: msg91Handler, webhook: webhookHandler };

const ERROR_BODIES: Record<string, { reject: [number, unknown] }> = {
  twilio: { reject: [400, { code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 }] },
  vonage: { reject: [200, { 'message-count': '1', messages: [{ status: '6', 'error-text': 'Invalid Message' }] }] },
  msg91: { reject: [200, { type: 'error', message: 'Invalid mobile number', code: '201' }] },
  webhook: { reject: [422, { error: 'no such user' }] },
};

/** One loopback server hosting any number of fake providers under their own path prefixes. */
export class FakeProviders {
  private readonly providers = new Map<string, FakeProvider & { kind: string }>();
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeProviders> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fakes = new FakeProviders(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req, res) => fakes.handle(req, res));
    return fakes;
  }

  /** Adds a fake of `kind` (twilio, vonage, msg91, webhook) reachable at `/<name>`. */
  add(kind: 'twilio' | 'vonage' | 'msg91' | 'webhook', name: string): FakeProvider {
    const provider = {
      kind,
      name,
      baseUrl: `${this.url}/${name}`,
      mode: 'ok' as FakeMode,
      queue: [] as FakeMode[],
      requests: [] as FakeRequest[],
      accepted(): FakeRequest[] {
        return this.requests.filter((r) => r.accepted);
      },
    };
    this.providers.set(name, provider);
    return provider;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', this.url);
      const [, name, ...rest] = url.pathname.split('/');
      const provider = this.providers.get(name ?? '');
      if (!provider) {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[key] = value;
      const type = (headers['content-type'] ?? '').split(';')[0];
      let json: unknown;
      if (type === 'application/json') {
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
      }
      const request: FakeRequest = {
        provider: name!,
        method: req.method ?? 'GET',
        path: '/' + rest.join('/'),
        headers,
        body,
        form: type === 'application/x-www-form-urlencoded' ? Object.fromEntries(new URLSearchParams(body)) : undefined,
        json,
        accepted: false,
        aborted: false,
        answer: undefined,
      };
      provider.requests.push(request);
      const mode = provider.queue.shift() ?? provider.mode;
      const respond = (status: number, payload: unknown): void => {
        if (res.destroyed) return;
        request.accepted = status >= 200 && status < 300 && !(provider.kind === 'vonage' && (payload as any)?.messages?.[0]?.status !== '0') && !(provider.kind === 'msg91' && (payload as any)?.type !== 'success');
        request.answer = payload;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
      };
      if (mode === 'hang') {
        this.open.add(res);
        res.on('close', () => {
          this.open.delete(res);
          if (!res.writableEnded) request.aborted = true;
        });
        return;
      }
      if (mode === 'unavailable') return respond(503, { message: 'Service Unavailable' });
      if (mode === 'reject') return respond(...ERROR_BODIES[provider.kind]!.reject);
      HANDLERS[provider.kind]!(provider, request, respond);
    });
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Waits (bounded, polling every 20 ms) until `condition` gives a value, and returns it. */
export async function until<T>(what: string, condition: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  let found: T | undefined | false;
  await waitFor(what, async () => Boolean((found = await condition())), timeoutMs, 20);
  return found as T;
}

// --- callbacks, as each provider sends them -------------------------------------------------------------

/** Twilio's request signature, from its security documentation: HMAC-SHA1 of URL + sorted name/value pairs. */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac('sha1', authToken).update(data).digest('base64');
}

/** POSTs a Twilio status callback (form-encoded, signed) to `url`. */
export async function sendTwilioCallback(url: string, params: Record<string, string>, options: { authToken?: string; signedUrl?: string } = {}): Promise<Response> {
  const signature = twilioSignature(options.authToken ?? TWILIO.authToken, options.signedUrl ?? url, params);
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature, 'user-agent': 'TwilioProxy/1.1' },
    body: new URLSearchParams(params).toString(),
    signal: AbortSignal.timeout(5_000),
  });
}

/** Vonage's `md5hash` signature: `&k=v` of the sorted parameters (`&`, `=` in values → `_`) + secret, MD5 hex. */
export function vonageMd5Signature(params: Record<string, string>, secret: string): string {
  const data = Object.keys(params)
    .sort()
    .map((key) => `&${key}=${params[key]!.replace(/[&=]/g, '_')}`)
    .join('');
  return createHash('md5').update(data + secret).digest('hex');
}

/** A Vonage delivery receipt as a GET with query parameters (the account default). */
export async function sendVonageReceipt(callbackUrl: string, params: Record<string, string>): Promise<Response> {
  const url = new URL(callbackUrl);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return fetch(url, { signal: AbortSignal.timeout(5_000) });
}

/** An MSG91 webhook v2 delivery report: form field `data` holding a JSON array. */
export async function sendMsg91Report(url: string, requestId: string, status: string, desc: string): Promise<Response> {
  const data = JSON.stringify([{ senderId: 'OTPDTS', requestId, report: [{ date: '2024-05-22 10:06:20', number: '919812345678', status, desc }], userId: '27000', campaignName: 'API' }]);
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ data }).toString(), signal: AbortSignal.timeout(5_000) });
}

/** A status report from a webhook receiver, signed the Standard Webhooks way with `secret`. */
export async function sendWebhookReport(url: string, body: unknown, secret = WEBHOOK_SECRET, timestamp = Math.floor(Date.now() / 1000)): Promise<Response> {
  const text = JSON.stringify(body);
  const id = 'msg_' + hex(8);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signature = 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.${text}`).digest('base64');
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature },
    body: text,
    signal: AbortSignal.timeout(5_000),
  });
}
