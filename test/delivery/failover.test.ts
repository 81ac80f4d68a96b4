import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TestServer } from '../helper.js';
import { FakeProviders, TWILIO, until, VONAGE, type FakeProvider } from '../support/fake-providers.js';
import { BACKENDS, FAST_OUTBOX, phone, startWithConfig } from './setup.js';

const KEYS = { fo: 'otpd_test_key_failover_000001', fv: 'otpd_test_key_fallback_voice01', rt: 'otpd_test_key_retries_0000001' };

function config(fakes: FakeProviders): string {
  const twilio = (name: string) => `
  ${name}:
    type: twilio
    accountSid: ${TWILIO.accountSid}
    authToken: \${TWILIO_TOKEN}
    from: "+15550001111"
    baseUrl: ${fakes.url}/${name}
    timeoutSeconds: 1`;
  return `
providers:${twilio('twilio-a')}${twilio('twilio-b')}
  vonage-a:
    type: vonage
    apiKey: ${VONAGE.apiKey}
    apiSecret: ${VONAGE.apiSecret}
    from: OTPD
    baseUrl: ${fakes.url}/vonage-a
    timeoutSeconds: 1
apps:
  fo:
    apiKey: ${KEYS.fo}
    routes: { sms: [twilio-a, vonage-a] }
  fv:
    apiKey: ${KEYS.fv}
    routes: { sms: [vonage-a, voice:twilio-a] }
  rt:
    apiKey: ${KEYS.rt}
    routes: { sms: [twilio-b] }
${FAST_OUTBOX}`;
}

for (const backend of BACKENDS) {
  describe(`failover and retries (${backend})`, () => {
    let fakes: FakeProviders;
    let server: TestServer;
    let twilioA: FakeProvider;
    let twilioB: FakeProvider;
    let vonage: FakeProvider;

    before(async () => {
      fakes = await FakeProviders.start();
      twilioA = fakes.add('twilio', 'twilio-a');
      twilioB = fakes.add('twilio', 'twilio-b');
      vonage = fakes.add('vonage', 'vonage-a');
      server = await startWithConfig(config(fakes), backend, { TWILIO_TOKEN: TWILIO.authToken });
    });
    after(async () => {
      await server?.close();
      await fakes?.close();
    });
    beforeEach(() => {
      for (const fake of [twilioA, twilioB, vonage]) {
        fake.mode = 'ok';
        fake.queue = [];
      }
    });

    async function create(apiKey: string, to: string): Promise<string> {
      const response = await server.request('POST', '/v1/verifications', { to }, { apiKey });
      assert.equal(response.status, 201, response.text);
      return response.body.id;
    }

    async function settled(apiKey: string, id: string, status: string): Promise<any> {
      return until(`delivery.status ${status}`, async () => {
        const v = (await server.request('GET', `/v1/verifications/${id}`, undefined, { apiKey })).body;
        return v.delivery.status === status && v;
      });
    }

    it('a provider answering 503 moves the message to the next one, which is recorded as the provider', async () => {
      twilioA.mode = 'unavailable';
      const to = phone();
      const id = await create(KEYS.fo, to);
      const v = await settled(KEYS.fo, id, 'sent');
      assert.equal(v.delivery.provider, 'vonage-a');
      assert.equal(twilioA.requests.filter((r) => r.form?.To === to).length, 1);
      const sms = vonage.accepted().find((r) => r.form?.to === to.slice(1));
      assert.ok(sms, 'vonage took it');
      const code = /(\d{6})/.exec(sms.form!.text!)![1]!;
      assert.equal((await server.request('POST', `/v1/verifications/${id}/check`, { code }, { apiKey: KEYS.fo })).body.valid, true);
    });

    it('a provider that does not answer within its timeout moves the message on too', async () => {
      twilioA.mode = 'hang';
      const to = phone();
      const id = await create(KEYS.fo, to);
      const v = await settled(KEYS.fo, id, 'sent');
      assert.equal(v.delivery.provider, 'vonage-a');
      const hung = twilioA.requests.find((r) => r.form?.To === to);
      assert.ok(hung);
      await until('the hung request to be given up', () => hung.aborted);
      assert.equal(hung.accepted, false);
    });

    it('an SMS route can fall back to a voice call, recorded as voice:provider', async () => {
      vonage.mode = 'reject';
      const to = phone();
      const id = await create(KEYS.fv, to);
      const v = await settled(KEYS.fv, id, 'sent');
      assert.equal(v.delivery.provider, 'voice:twilio-a');
      assert.equal(v.channel, 'sms', 'the verification keeps the channel it was asked for');
      const call = twilioA.accepted().find((r) => r.path.endsWith('/Calls.json') && r.form?.To === to);
      assert.ok(call, 'a call was placed');
      const code = /(\d(?:, \d){5})/.exec(call.form!.Twiml!)![1]!.replace(/, /g, '');
      assert.equal((await server.request('POST', `/v1/verifications/${id}/check`, { code }, { apiKey: KEYS.fv })).body.valid, true);
    });

    it('a transient failure is retried with backoff and then delivered, once', async () => {
      twilioB.queue = ['unavailable', 'unavailable'];
      const to = phone();
      const id = await create(KEYS.rt, to);
      const v = await settled(KEYS.rt, id, 'sent');
      assert.equal(v.delivery.provider, 'twilio-b');
      assert.equal(v.delivery.failureReason, null, 'the retry reason is cleared once delivered');
      const requests = twilioB.requests.filter((r) => r.form?.To === to);
      assert.equal(requests.length, 3);
      assert.equal(requests.filter((r) => r.accepted).length, 1);
    });

    it('after the last try the delivery is failed with the reason, and the verification fails', async () => {
      twilioB.mode = 'unavailable';
      const to = phone();
      const id = await create(KEYS.rt, to);
      const v = await settled(KEYS.rt, id, 'failed');
      assert.equal(v.status, 'failed');
      assert.match(v.delivery.failureReason, /^gave up after 3 tries: twilio-b: HTTP 503/);
      // Bounded: exactly maxTries attempts, and nothing after the give-up.
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(twilioB.requests.filter((r) => r.form?.To === to).length, 3);
    });

    it('a permanent refusal by every provider fails at once, with each provider\'s reason', async () => {
      twilioA.mode = 'reject';
      vonage.mode = 'reject';
      const to = phone();
      const id = await create(KEYS.fo, to);
      const v = await settled(KEYS.fo, id, 'failed');
      assert.match(v.delivery.failureReason, /twilio-a: HTTP 400 \(21211 The 'To' number is not a valid phone number\.\); vonage-a: status 6 \(Invalid Message\)/);
      assert.equal(twilioA.requests.filter((r) => r.form?.To === to).length, 1);
      assert.equal(vonage.requests.filter((r) => r.form?.to === to.slice(1)).length, 1);
    });
  });
}
