import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helper.js';
import { FakeProviders, TWILIO, until, type FakeProvider } from '../support/fake-providers.js';
import { BACKENDS, phone, startWithConfig } from './setup.js';

const API_KEY = 'otpd_test_key_outbox_skip_0001';
/** The longest wait before a retry (retryMaxSeconds below): long enough to cancel in between. */
const RETRY_MAX_MS = 1_500;

function config(fakes: FakeProviders): string {
  return `
providers:
  twilio-s:
    type: twilio
    accountSid: ${TWILIO.accountSid}
    authToken: \${TWILIO_TOKEN}
    from: "+15550001111"
    baseUrl: ${fakes.url}/twilio-s
    timeoutSeconds: 1
apps:
  skip:
    apiKey: ${API_KEY}
    routes: { sms: [twilio-s] }
outbox:
  pollIntervalMs: 50
  leaseSeconds: 10
  maxTries: 3
  retryBaseSeconds: ${RETRY_MAX_MS / 1000}
  retryMaxSeconds: ${RETRY_MAX_MS / 1000}
`;
}

/**
 * The worker sends a verification's message only while the verification waits for that send; it learns the
 * verification's state from the claim itself (OutboxLease.verification), read in the same store step.
 */
for (const backend of BACKENDS) {
  describe(`the outbox skips messages whose verification stopped waiting (${backend})`, () => {
    let fakes: FakeProviders;
    let twilio: FakeProvider;
    let server: TestServer;

    before(async () => {
      fakes = await FakeProviders.start();
      twilio = fakes.add('twilio', 'twilio-s');
      server = await startWithConfig(config(fakes), backend, { TWILIO_TOKEN: TWILIO.authToken });
    });
    after(async () => {
      await server?.close();
      await fakes?.close();
    });

    it('a message waiting for its retry is not sent once its verification is canceled; an uncanceled one is', async () => {
      const kept = phone();
      const dropped = phone();
      // The first try of each fails; both wait for a retry.
      twilio.queue = ['unavailable', 'unavailable'];
      const ids: Record<string, string> = {};
      for (const to of [kept, dropped]) {
        const response = await server.request('POST', '/v1/verifications', { to }, { apiKey: API_KEY });
        assert.equal(response.status, 201, response.text);
        ids[to] = response.body.id;
      }
      for (const to of [kept, dropped]) {
        await until(`the first try to ${to} to fail`, async () => {
          const v = (await server.request('GET', `/v1/verifications/${ids[to]}`, undefined, { apiKey: API_KEY })).body;
          return /^try 1 of 3 failed/.test(v.delivery.failureReason ?? '');
        });
      }
      const failedBy = Date.now();
      const canceled = await server.request('POST', `/v1/verifications/${ids[dropped]}/cancel`, undefined, { apiKey: API_KEY });
      assert.equal(canceled.status, 200, canceled.text);

      await until('the kept verification to be sent on its retry', async () => {
        const v = (await server.request('GET', `/v1/verifications/${ids[kept]}`, undefined, { apiKey: API_KEY })).body;
        return v.delivery.status === 'sent';
      });
      // Past the latest moment the canceled one's retry was due, and a few polls more.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, failedBy + RETRY_MAX_MS + 500 - Date.now())));
      const to = (number: string) => twilio.requests.filter((r) => r.form?.To === number);
      assert.equal(to(kept).length, 2, 'the kept verification: the failed try and its retry');
      assert.equal(to(dropped).length, 1, 'the canceled verification: only the try before the cancel');
      const ended = (await server.request('GET', `/v1/verifications/${ids[dropped]}`, undefined, { apiKey: API_KEY })).body;
      assert.equal(ended.status, 'canceled');
    });

    it('a message sent from memory is dropped when a create in the same turn supersedes its verification', async () => {
      const { services } = server.server;
      const { app } = await services.apps.create(`same-turn-${backend}`, { smsRoute: ['twilio-s'], destinationCooldown: 0 });
      const to = phone();
      // One event-loop turn: both writes land in one store step, the second superseding the first, and both
      // messages were written already leased to this process (its worker has free slots).
      const [first, second] = await Promise.all([0, 1].map(() => services.verifications.create(app, { to }, { keyId: 'same-turn' })));
      await until('the second to be sent', async () => (await services.verifications.get(app, second!.id)).deliveryStatus === 'sent');
      await services.drain();
      assert.equal(twilio.requests.filter((r) => r.form?.To === to).length, 1, 'one SMS: the superseded code is never sent');
      const superseded = await services.verifications.get(app, first!.id);
      assert.deepEqual([superseded.status, superseded.deliveryStatus], ['canceled', 'queued']);
    });
  });
}
