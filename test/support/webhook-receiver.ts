import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

/** One POST the receiver got, with its signature checked independently of otpd's code. */
export interface ReceivedWebhook {
  id: string;
  timestamp: number;
  signatures: string[];
  body: string;
  json: { type: string; timestamp: string; data: Record<string, any> };
  /** Whether some `v1,` signature is HMAC-SHA256(secret, `id.timestamp.body`) for one of the receiver's secrets. */
  signatureValid: boolean;
  status: number;
}

/** What to answer a request: a status, optionally after a delay. */
export type Responder = (request: ReceivedWebhook, nth: number) => { status: number; delayMs?: number };

/**
 * A Standard Webhooks receiver on loopback, written from the spec (https://www.standardwebhooks.com):
 * the signed content is `webhook-id.webhook-timestamp.body`, the key the Base64 after `whsec_`. It
 * de-duplicates by `webhook-id` the way a receiver should: `processed` holds each id once.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  readonly processed = new Map<string, ReceivedWebhook>();
  secrets: string[] = [];
  respond: Responder = () => ({ status: 204 });
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      void this.handle(request).then(({ status, delayMs }) => {
        const send = () => response.writeHead(status).end();
        if (delayMs) setTimeout(send, delayMs).unref();
        else send();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks`;
    return this;
  }

  private async handle(request: IncomingMessage): Promise<{ status: number; delayMs?: number }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const header = (name: string): string => String(request.headers[name] ?? '');
    const id = header('webhook-id');
    const timestamp = Number(header('webhook-timestamp'));
    const signatures = header('webhook-signature').split(' ').filter(Boolean);
    const signatureValid = this.secrets.some((secret) => {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const expected = Buffer.from('v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64'));
      return signatures.some((candidate) => candidate.length === expected.length && timingSafeEqual(Buffer.from(candidate), expected));
    });
    let json: ReceivedWebhook['json'];
    try {
      json = JSON.parse(body) as ReceivedWebhook['json'];
    } catch {
      json = { type: '', timestamp: '', data: {} };
    }
    const received: ReceivedWebhook = { id, timestamp, signatures, body, json, signatureValid, status: 0 };
    const answer = this.respond(received, this.received.filter((r) => r.id === id).length + 1);
    received.status = answer.status;
    this.received.push(received);
    // Only a verified, successfully answered delivery counts, and each id once.
    if (signatureValid && answer.status >= 200 && answer.status < 300 && !answer.delayMs && !this.processed.has(id)) this.processed.set(id, received);
    if (signatureValid && answer.delayMs && !this.processed.has(id)) this.processed.set(id, received);
    return answer;
  }

  /** Waits (bounded) until `predicate` holds for what was received. */
  async waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.received)) {
      if (Date.now() > deadline) throw new Error(`webhook receiver: condition not met within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((r) => [r.json.type, r.id, r.status]))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  ofType(type: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.json.type === type);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
