import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helper.js';
import { FakeProviders, until, WEBHOOK_SECRET, type FakeProvider } from '../support/fake-providers.js';
import { BACKENDS, FAST_OUTBOX, phone, startWithConfig } from './setup.js';

const KEY = 'otpd_test_key_store_review_01';

for (const backend of BACKENDS) {
  describe(`test numbers (${backend})`, () => {
    let fakes: FakeProviders;
    let hook: FakeProvider;
    let server: TestServer;

    before(async () => {
      fakes = await FakeProviders.start();
      hook = fakes.add('webhook', 'hook');
      server = await startWithConfig(
        `
providers:
  hook:
    type: webhook
    url: ${hook.baseUrl}/messages
    secret: \${HOOK_SECRET}
apps:
  review:
    apiKey: ${KEY}
    routes: { sms: [hook], email: [hook] }
    settings:
      testNumbers: ["+15555550100=123456", "Review@Example.com=00004321"]
      resendCooldown: 0
      destinationCooldown: 0
${FAST_OUTBOX}`,
        backend,
        { HOOK_SECRET: WEBHOOK_SECRET },
      );
    });
    after(async () => {
      await server?.close();
      await fakes?.close();
    });

    it('a test number gets its fixed code, never reaches a provider, and is marked as a test delivery', async () => {
      const created = await server.request('POST', '/v1/verifications', { to: '+15555550100' }, { apiKey: KEY });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(created.body.delivery, { status: 'delivered', provider: 'test', failureReason: null, test: true });
      const wrong = await server.request('POST', `/v1/verifications/${created.body.id}/check`, { code: '654321' }, { apiKey: KEY });
      assert.equal(wrong.body.valid, false);
      const resent = await server.request('POST', `/v1/verifications/${created.body.id}/resend`, undefined, { apiKey: KEY });
      assert.equal(resent.status, 200, resent.text);
      assert.equal(resent.body.sends, 2);
      assert.deepEqual(resent.body.delivery, { status: 'delivered', provider: 'test', failureReason: null, test: true });
      const right = await server.request('POST', `/v1/verifications/${created.body.id}/check`, { code: '123456' }, { apiKey: KEY });
      assert.equal(right.body.valid, true, 'the fixed code works after a resend too');

      const mail = await server.request('POST', '/v1/verifications', { to: 'review@example.com' }, { apiKey: KEY });
      assert.equal(mail.body.delivery.test, true);
      assert.equal((await server.request('POST', `/v1/verifications/${mail.body.id}/check`, { code: '00004321' }, { apiKey: KEY })).body.valid, true, 'an 8-digit fixed code, whatever the app code length');

      // A real number of the same app does reach the provider, so the provider was there to be reached.
      const to = phone();
      const real = await server.request('POST', '/v1/verifications', { to }, { apiKey: KEY });
      assert.equal(real.body.delivery.test, false);
      await until('the real message', () => hook.accepted().find((r) => r.json?.data?.to === to));
      assert.deepEqual(
        hook.requests.filter((r) => ['+15555550100', 'review@example.com'].includes(r.json?.data?.to)),
        [],
        'no test destination reached the provider',
      );
    });
  });
}
