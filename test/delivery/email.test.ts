import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import type { TestServer } from '../helper.js';
import { until } from '../support/fake-providers.js';
import { BACKENDS, FAST_OUTBOX, startWithConfig } from './setup.js';

interface Received {
  from: string;
  to: string[];
  raw: string;
  user: string | undefined;
}

const KEY = 'otpd_test_key_email_app_00001';
const SMTP_USER = 'otpd';
const SMTP_PASSWORD = 'smtp-password-123';

/** A real SMTP server (smtp-server) on a loopback port: AUTH PLAIN/LOGIN, 550 for one mailbox, 451 once for another. */
async function startSmtp(): Promise<{ server: SMTPServer; port: number; received: Received[]; tempFailures: Map<string, number> }> {
  const received: Received[] = [];
  const tempFailures = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith('bounce')) return callback(Object.assign(new Error('5.1.1 mailbox unavailable'), { responseCode: 550 }));
      const left = tempFailures.get(address.address) ?? 0;
      if (left > 0) {
        tempFailures.set(address.address, left - 1);
        return callback(Object.assign(new Error('4.2.1 try again later'), { responseCode: 451 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: session.user as string | undefined,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.server.address() as AddressInfo).port, received, tempFailures };
}

/** The decoded text/plain part of a MIME message (quoted-printable or 7bit, as nodemailer writes it). */
function textPart(raw: string): string {
  const match = /Content-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: ([\w-]+)\r\n\r\n([\s\S]*?)\r\n(?:--|$)/.exec(raw);
  assert.ok(match, 'a text/plain part');
  const [, encoding, body] = match;
  if (encoding !== 'quoted-printable') return body!;
  return Buffer.from(body!.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

for (const backend of BACKENDS) {
  describe(`email over SMTP (${backend})`, () => {
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    let server: TestServer;

    before(async () => {
      smtp = await startSmtp();
      server = await startWithConfig(
        `
providers:
  mail:
    type: smtp
    host: 127.0.0.1
    port: ${smtp.port}
    user: ${SMTP_USER}
    password: \${SMTP_PASSWORD}
    from: '"Shop Login" <login@shop.example>'
    timeoutSeconds: 5
apps:
  shop:
    apiKey: ${KEY}
    routes: { email: [mail] }
${FAST_OUTBOX}`,
        backend,
        { SMTP_PASSWORD },
      );
    });
    after(async () => {
      await server?.close();
      await new Promise<void>((resolve) => smtp.server.close(() => resolve()));
    });

    it('a real SMTP server receives a text and HTML message whose code verifies through the API', async () => {
      const to = `alice.${backend}@example.com`;
      const created = await server.request('POST', '/v1/verifications', { to, locale: 'fr' }, { apiKey: KEY });
      assert.equal(created.status, 201, created.text);
      const mail = await until('the email', () => smtp.received.find((m) => m.to.includes(to)));
      assert.equal(mail.user, SMTP_USER, 'authenticated with the configured user');
      assert.equal(mail.from, 'login@shop.example');
      assert.match(mail.raw, /^From: "?Shop Login"? <login@shop\.example>\r$/m);
      assert.match(mail.raw, /^Subject: =\?UTF-8\?Q\?Votre_code_de_v=C3=A9rification_shop\?=\r$/m);
      assert.match(mail.raw, /^Message-ID: <msg_[0-9a-z]+@shop\.example>\r$/m, 'Message-ID is the otpd message id');
      assert.match(mail.raw, /Content-Type: multipart\/alternative/);
      assert.match(mail.raw, /Content-Type: text\/html; charset=utf-8/);
      const text = textPart(mail.raw);
      assert.match(text, /^Votre code de vérification shop est :/);
      const code = /\n(\d{6})\n/.exec(text.replace(/\r/g, ''))![1]!;
      const check = await server.request('POST', `/v1/verifications/${created.body.id}/check`, { code }, { apiKey: KEY });
      assert.equal(check.body.valid, true);
      const v = await until('sent', async () => {
        const view = (await server.request('GET', `/v1/verifications/${created.body.id}`, undefined, { apiKey: KEY })).body;
        return view.delivery.status === 'sent' && view;
      });
      assert.equal(v.delivery.provider, 'mail');
    });

    it('an SMTP 451 is retried; a 550 fails the delivery at once with the server\'s reason', async () => {
      const later = `later.${backend}@example.com`;
      smtp.tempFailures.set(later, 1);
      const retried = await server.request('POST', '/v1/verifications', { to: later }, { apiKey: KEY });
      await until('the retried email', () => smtp.received.find((m) => m.to.includes(later)));
      assert.equal(smtp.tempFailures.get(later), 0);

      const bounce = `bounce.${backend}@example.com`;
      const created = await server.request('POST', '/v1/verifications', { to: bounce }, { apiKey: KEY });
      const v = await until('failed', async () => {
        const view = (await server.request('GET', `/v1/verifications/${created.body.id}`, undefined, { apiKey: KEY })).body;
        return view.delivery.status === 'failed' && view;
      });
      assert.match(v.delivery.failureReason, /^mail: SMTP 550/);
      assert.equal(v.status, 'failed');
      assert.equal(retried.status, 201);
    });
  });
}
