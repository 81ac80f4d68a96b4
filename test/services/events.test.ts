import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { base32Decode, totp } from '../../src/core/otp.js';
import { createLogger } from '../../src/logger.js';
import { openStoreFor } from '../../src/server.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { AppRecord, Store } from '../../src/store/store.js';
import { startTestServer, TEST_SECRET, type TestServer } from '../helper.js';
import { REDIS_URL, STORE_BACKENDS } from '../support/backends.js';
import { deleteKeysWithPrefix, inspectionClient } from '../support/redis-keys.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { NO_REQUEST } from '../../src/core/rate-limits.js';

/**
 * Webhook events end to end (docs/audit-and-events.md): a real otpd on loopback, a real receiver that
 * checks every signature itself, on SQLite and on Redis. Retries run on a fast schedule (100 ms, 200 ms, …)
 * so the retry paths take well under a second.
 */
let counter = 0;
function phone(): string {
  // A fresh destination per verification: the destination cooldown (rate limits) must not interfere.
  counter++;
  return `+1555${String(process.pid % 1000).padStart(3, '0')}${String(counter).padStart(4, '0')}`;
}

function wrong(code: string): string {
  return code === '000000' ? '111111' : '000000';
}

for (const backend of STORE_BACKENDS) {
  describe(`webhook events (${backend.name})`, () => {
    let t: TestServer;
    let services: Services;
    let receiver: WebhookReceiver;
    let app: AppRecord;

    before(async () => {
      receiver = await new WebhookReceiver().start();
      t = await startTestServer({ ...backend.env(), OTPD_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,300ms', OTPD_WEBHOOK_TIMEOUT: '1' });
      services = t.server.services;
      app = await services.apps.update('default', { webhookUrl: receiver.url });
      receiver.secrets = [(await services.events.webhookSecret(app)).secret];
    });
    after(async () => {
      await t.close();
      await receiver.stop();
    });

    async function approved(): Promise<{ id: string; code: string }> {
      const created = await t.request('POST', '/v1/verifications', { to: phone() });
      assert.equal(created.status, 201, created.text);
      const code = await t.codeFor(created.body.id);
      const checked = await t.request('POST', `/v1/verifications/${created.body.id}/check`, { code });
      assert.equal(checked.body.valid, true, checked.text);
      return { id: created.body.id, code };
    }

    /** Waits (bounded) for an audit entry, read through the API as a client would. */
    async function auditEntry(event: string, verificationId: string): Promise<any> {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const page = await t.request('GET', `/v1/audit?event=${event}&verificationId=${verificationId}`);
        assert.equal(page.status, 200, page.text);
        if (page.body.items.length > 0) return page.body.items[0];
        if (Date.now() > deadline) throw new Error(`no ${event} audit entry for ${verificationId}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }

    it('POSTs verification.approved in the Standard Webhooks format, signed with the app secret', async () => {
      const { id, code } = await approved();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'verification.approved' && w.json.data.verificationId === id));
      const hook = receiver.ofType('verification.approved').find((w) => w.json.data.verificationId === id)!;
      assert.equal(hook.signatureValid, true);
      assert.match(hook.id, /^evt_[0-9a-z]{26}$/);
      assert.ok(Math.abs(hook.timestamp - Date.now() / 1000) < 60, 'webhook-timestamp is Unix seconds of the attempt');
      assert.equal(new Date(hook.json.timestamp).toISOString(), hook.json.timestamp);
      assert.equal(hook.json.data.status, 'approved');
      assert.equal(hook.json.data.channel, 'sms');
      assert.match(hook.json.data.to, /^\+1\*+\d{4}$/, 'the destination is masked');
      assert.ok(!hook.body.includes(code), 'the code is never in an event');
    });

    it('S4: a replayed code and a brute-forced verification each produce an audit row and a webhook event', async () => {
      // Replay: the right code of an approved verification, again.
      const { id, code } = await approved();
      const replay = await t.request('POST', `/v1/verifications/${id}/check`, { code });
      assert.equal(replay.body.valid, false);
      const replayed = await auditEntry('code.replayed', id);
      assert.equal(replayed.resource, id);
      assert.equal(replayed.ip, '127.0.0.1');
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'code.replayed' && w.json.data.verificationId === id));
      assert.equal(receiver.ofType('code.replayed').find((w) => w.json.data.verificationId === id)!.signatureValid, true);

      // Brute force: wrong codes up to the limit lock the verification; the right code is then refused.
      const created = await t.request('POST', '/v1/verifications', { to: phone(), maxAttempts: 3 });
      const locked = created.body.id as string;
      const right = await t.codeFor(locked);
      for (let i = 0; i < 3; i++) assert.equal((await t.request('POST', `/v1/verifications/${locked}/check`, { code: wrong(right) })).body.valid, false);
      const after = await t.request('POST', `/v1/verifications/${locked}/check`, { code: right });
      assert.equal(after.body.valid, false);
      assert.equal(after.body.status, 'max_attempts_reached');
      assert.equal((await auditEntry('verification.max_attempts_reached', locked)).details.attempts, 3);
      assert.equal((await auditEntry('verification.locked', locked)).resource, locked);
      assert.equal((await t.request('GET', `/v1/audit?event=check.failed&verificationId=${locked}`)).body.items.length, 2);
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'verification.max_attempts_reached' && w.json.data.verificationId === locked));
      const hook = receiver.ofType('verification.max_attempts_reached').find((w) => w.json.data.verificationId === locked)!;
      assert.equal(hook.signatureValid, true);
      assert.equal(hook.json.data.attempts, 3);
    });

    it('retries a failed delivery with backoff, under the same webhook-id, until the receiver accepts it', async () => {
      let target: string | undefined;
      receiver.respond = (request, nth) => (request.json.data.verificationId === target && nth <= 2 ? { status: 500 } : { status: 204 });
      const pending = await t.request('POST', '/v1/verifications', { to: phone() });
      target = pending.body.id;
      const code = await t.codeFor(target!);
      await t.request('POST', `/v1/verifications/${target}/check`, { code });
      await receiver.waitFor((r) => r.filter((w) => w.json.data.verificationId === target && w.json.type === 'verification.approved').length >= 3);
      const attempts = receiver.received.filter((w) => w.json.data.verificationId === target && w.json.type === 'verification.approved');
      assert.deepEqual(attempts.map((w) => w.status), [500, 500, 204]);
      assert.equal(new Set(attempts.map((w) => w.id)).size, 1, 'every attempt carries the same webhook-id');
      assert.ok(attempts.every((w) => w.signatureValid), 'every attempt is signed (over its own timestamp)');
      // Accepted once: no further attempt comes.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(receiver.received.filter((w) => w.id === attempts[0]!.id).length, 3);
      receiver.respond = () => ({ status: 204 });
    });

    it('delivers again when the receiver answers too late; the receiver drops the duplicate by its id', async () => {
      let target: string | undefined;
      receiver.respond = (request, nth) => (request.json.data.verificationId === target && nth === 1 ? { status: 204, delayMs: 1_500 } : { status: 204 });
      const { id } = await (async () => {
        const created = await t.request('POST', '/v1/verifications', { to: phone() });
        target = created.body.id;
        const code = await t.codeFor(target!);
        await t.request('POST', `/v1/verifications/${target}/check`, { code });
        return { id: target! };
      })();
      await receiver.waitFor((r) => r.filter((w) => w.json.data.verificationId === id && w.json.type === 'verification.approved').length >= 2);
      const deliveries = receiver.received.filter((w) => w.json.data.verificationId === id && w.json.type === 'verification.approved');
      assert.equal(new Set(deliveries.map((w) => w.id)).size, 1, 'the redelivery is the same event');
      assert.equal([...receiver.processed.values()].filter((w) => w.json.data.verificationId === id && w.json.type === 'verification.approved').length, 1);
      receiver.respond = () => ({ status: 204 });
    });

    it('gives an event up on 410 Gone, with an audit entry', async () => {
      receiver.respond = (request) => (request.json.type === 'verification.approved' ? { status: 410 } : { status: 204 });
      const before = receiver.received.length;
      const { id } = await approved();
      await receiver.waitFor((r) => r.slice(before).some((w) => w.json.data.verificationId === id));
      const deadline = Date.now() + 5_000;
      let abandoned: any[] = [];
      while (abandoned.length === 0 && Date.now() < deadline) {
        abandoned = (await t.request('GET', '/v1/audit?event=webhook.abandoned')).body.items;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(abandoned[0]?.details.reason, 'HTTP 410');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(receiver.received.filter((w) => w.json.data.verificationId === id).length, 1, 'no retry after 410');
      receiver.respond = () => ({ status: 204 });
    });

    it('signs with the old and the new secret for a day after a rotation', async () => {
      const old = receiver.secrets[0]!;
      const rotated = await services.events.webhookSecret(app, { rotate: true });
      assert.notEqual(rotated.secret, old);
      assert.ok(rotated.previousValidUntil! > Date.now() + 23 * 3_600_000);
      const { id } = await approved();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'verification.approved' && w.json.data.verificationId === id));
      const hook = receiver.ofType('verification.approved').find((w) => w.json.data.verificationId === id)!;
      assert.equal(hook.signatures.length, 2);
      receiver.secrets = [rotated.secret];
      assert.equal(hook.signatureValid, true, 'valid under the new secret');
      assert.equal((await services.events.webhookSecret(app)).secret, rotated.secret, 'the new secret is the current one');
    });
  });

  describe(`webhook events driven by the clock (${backend.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-events-'));
    const backendEnv = backend.env();
    let now = Date.now();
    let store: Store;
    let services: Services;
    let receiver: WebhookReceiver;
    let app: AppRecord;

    before(async () => {
      receiver = await new WebhookReceiver().start();
      const config = loadConfig({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_DEV_OUTBOX: join(dir, 'outbox.jsonl'), OTPD_LOG_LEVEL: 'silent', ...backendEnv });
      store = await openStoreFor(config);
      services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent'), clock: () => now });
      app = (await services.apps.create('clocked', { webhookUrl: receiver.url, resendCooldown: 0 })).app;
      receiver.secrets = [(await services.events.webhookSecret(app)).secret];
    });
    after(async () => {
      await services.drain();
      await services.background.stop();
      await store.close();
      await receiver.stop();
      rmSync(dir, { recursive: true, force: true });
      if (backendEnv.OTPD_REDIS_PREFIX) {
        const client = inspectionClient(REDIS_URL);
        await deleteKeysWithPrefix(client, backendEnv.OTPD_REDIS_PREFIX).finally(() => client.disconnect());
      }
    });

    /** Lets the worker run once at the current fake time, after what was emitted is stored. */
    async function tick(): Promise<void> {
      await services.audit.flush();
      while ((await services.events.deliverDue()) > 0) {
        /* until nothing is due */
      }
    }

    it('sends verification.expired when a verification expires unanswered, after any resend, and not for an approved one', async () => {
      const start = now;
      const unanswered = await services.verifications.create(app, { to: phone(), ttl: 60 }, NO_REQUEST);
      const resent = await services.verifications.create(app, { to: phone(), ttl: 60 }, NO_REQUEST);
      const answered = await services.verifications.create(app, { to: phone(), ttl: 60 }, NO_REQUEST);
      await tick();
      now = start + 40_000;
      await services.verifications.resend(app, resent.id, NO_REQUEST);
      const code = (await t2Code(answered.id))!;
      assert.equal((await services.verifications.check(app, answered.id, code, NO_REQUEST)).valid, true);
      await tick();
      now = start + 61_000;
      await tick();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'verification.expired'));
      const expired = () => receiver.ofType('verification.expired').map((w) => w.json.data.verificationId);
      assert.deepEqual(expired(), [unanswered.id]);
      const hook = receiver.ofType('verification.expired')[0]!;
      assert.equal(hook.signatureValid, true);
      assert.equal(hook.json.data.status, 'expired');
      now = start + 101_000;
      await tick();
      await receiver.waitFor((r) => r.filter((w) => w.json.type === 'verification.expired').length >= 2);
      assert.deepEqual(expired().sort(), [unanswered.id, resent.id].sort());
      now = start + 200_000;
      await tick();
      assert.equal(receiver.ofType('verification.expired').length, 2, 'each expiry is sent once');
    });

    it('sends delivery.failed when every provider gave up', async () => {
      const v = await services.verifications.create(app, { to: phone() }, NO_REQUEST);
      await services.verifications.recordDeliveryStatus(app.id, v.id, { status: 'failed', provider: 'twilio', failureReason: 'HTTP 400: unreachable', failVerification: true });
      await tick();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'delivery.failed' && w.json.data.verificationId === v.id));
      const hook = receiver.ofType('delivery.failed').find((w) => w.json.data.verificationId === v.id)!;
      assert.equal(hook.json.data.reason, 'HTTP 400: unreachable');
      assert.equal(hook.json.data.provider, 'twilio');
      assert.equal(hook.signatureValid, true);
    });

    it('sends factor.verified once, when the first code of a new factor is accepted', async () => {
      const enrolment = await services.factors.enrol(app, { type: 'totp', account: 'person@example.com' });
      const code = () => totp(base32Decode(enrolment.secret)!, now, { algorithm: 'SHA1', digits: 6, period: 30 });
      assert.equal((await services.factors.verify(app, enrolment.factor.id, code(), NO_REQUEST)).valid, true);
      now += 30_000;
      assert.equal((await services.factors.verify(app, enrolment.factor.id, code(), NO_REQUEST)).valid, true);
      await tick();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'factor.verified'));
      const hooks = receiver.ofType('factor.verified');
      assert.equal(hooks.length, 1);
      assert.equal(hooks[0]!.json.data.factorId, enrolment.factor.id);
      // A replayed authenticator code (standards V2) is a code.replayed event too.
      assert.equal((await services.factors.verify(app, enrolment.factor.id, code(), NO_REQUEST)).valid, false);
      await tick();
      await receiver.waitFor((r) => r.some((w) => w.json.type === 'code.replayed' && w.json.data.factorId === enrolment.factor.id));
    });

    it('gives up after the last retry of the schedule', async () => {
      const attemptsBefore = receiver.received.length;
      receiver.respond = () => ({ status: 503 });
      const v = await services.verifications.create(app, { to: phone() }, NO_REQUEST);
      await services.verifications.recordDeliveryStatus(app.id, v.id, { status: 'failed', provider: 'x', failureReason: 'down', failVerification: true });
      // The default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h → 8 attempts.
      for (const delay of [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, 36_000_000]) {
        now += delay;
        await tick();
      }
      const attempts = receiver.received.slice(attemptsBefore).filter((w) => w.json.data.verificationId === v.id);
      assert.equal(attempts.length, 8);
      const abandoned = (await services.audit.list(app, { event: 'webhook.abandoned' })).items;
      assert.equal(abandoned.length, 1);
      assert.equal(abandoned[0]!.details?.reason, 'HTTP 503');
      assert.equal(abandoned[0]!.details?.attempts, 8);
      receiver.respond = () => ({ status: 204 });
    });

    /** The code the dev outbox received for a verification (a person reading the message). */
    async function t2Code(id: string): Promise<string | undefined> {
      const { readFileSync, existsSync } = await import('node:fs');
      const file = join(dir, 'outbox.jsonl');
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        if (existsSync(file)) {
          const line = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { verificationId: string; code: string }).find((m) => m.verificationId === id);
          if (line) return line.code;
        }
        await services.drain();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return undefined;
    }
  });
}
