import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helper.js';
import {
  FakeProviders,
  MSG91,
  sendMsg91Report,
  sendTwilioCallback,
  sendVonageReceipt,
  sendWebhookReport,
  TWILIO,
  until,
  VONAGE,
  WEBHOOK_SECRET,
  type FakeProvider,
  type FakeRequest,
} from '../support/fake-providers.js';
import { BACKENDS, FAST_OUTBOX, phone, startWithConfig } from './setup.js';

const KEYS = { tw: 'otpd_test_key_twilio_app_0001', vg: 'otpd_test_key_vonage_app_0001', m91: 'otpd_test_key_msg91_app_00001', hook: 'otpd_test_key_webhook_app_001' };
const MSG91_TOKEN = 'msg91-callback-token-0123456789abcdef';

function config(fakes: FakeProviders): string {
  return `
providers:
  twilio-a:
    type: twilio
    accountSid: \${TWILIO_SID}
    authToken: \${TWILIO_TOKEN}
    from: "+15550001111"
    whatsappFrom: "+15550002222"
    baseUrl: ${fakes.url}/twilio-a
    timeoutSeconds: 2
  vonage-a:
    type: vonage
    apiKey: ${VONAGE.apiKey}
    apiSecret: \${VONAGE_SECRET}
    from: OTPD
    baseUrl: ${fakes.url}/vonage-a
  msg91-a:
    type: msg91
    authKey: \${MSG91_KEY}
    templateId: "6618c0ffee"
    sender: OTPDTS
    variables: { OTP: "{code}", APP: "{app}" }
    callbackToken: \${MSG91_TOKEN}
    baseUrl: ${fakes.url}/msg91-a
  hook-a:
    type: webhook
    url: ${fakes.url}/hook-a/messages
    secret: \${HOOK_SECRET}
apps:
  tw:
    apiKey: ${KEYS.tw}
    routes: { sms: [twilio-a], whatsapp: [twilio-a], voice: [twilio-a] }
  vg:
    apiKey: ${KEYS.vg}
    routes: { sms: [vonage-a] }
  m91:
    apiKey: ${KEYS.m91}
    routes: { sms: [msg91-a] }
  hook:
    apiKey: ${KEYS.hook}
    routes: { sms: [hook-a], email: [hook-a] }
${FAST_OUTBOX}`;
}

const ENV = { TWILIO_SID: TWILIO.accountSid, TWILIO_TOKEN: TWILIO.authToken, VONAGE_SECRET: VONAGE.apiSecret, MSG91_KEY: MSG91.authKey, MSG91_TOKEN, HOOK_SECRET: WEBHOOK_SECRET };

for (const backend of BACKENDS) {
  describe(`delivery providers (${backend})`, () => {
    let fakes: FakeProviders;
    let server: TestServer;
    let twilio: FakeProvider;
    let vonage: FakeProvider;
    let msg91: FakeProvider;
    let hook: FakeProvider;

    before(async () => {
      fakes = await FakeProviders.start();
      twilio = fakes.add('twilio', 'twilio-a');
      vonage = fakes.add('vonage', 'vonage-a');
      msg91 = fakes.add('msg91', 'msg91-a');
      hook = fakes.add('webhook', 'hook-a');
      server = await startWithConfig(config(fakes), backend, ENV);
    });
    after(async () => {
      await server?.close();
      await fakes?.close();
    });

    async function create(apiKey: string, body: Record<string, unknown>): Promise<any> {
      const response = await server.request('POST', '/v1/verifications', body, { apiKey });
      assert.equal(response.status, 201, response.text);
      return response.body;
    }

    async function view(apiKey: string, id: string): Promise<any> {
      return (await server.request('GET', `/v1/verifications/${id}`, undefined, { apiKey })).body;
    }

    async function deliveryIs(apiKey: string, id: string, status: string): Promise<any> {
      return until(`delivery.status ${status}`, async () => {
        const v = await view(apiKey, id);
        return v.delivery.status === status && v;
      });
    }

    async function requestTo(fake: FakeProvider, match: (r: FakeRequest) => boolean): Promise<FakeRequest> {
      return until(`a request to ${fake.name}`, () => fake.requests.find(match));
    }

    async function approves(apiKey: string, id: string, code: string): Promise<void> {
      const check = await server.request('POST', `/v1/verifications/${id}/check`, { code }, { apiKey });
      assert.equal(check.status, 200, check.text);
      assert.equal(check.body.valid, true, `the code the provider received (${code.replace(/\d/g, '#')}) verifies`);
    }

    it('twilio SMS: the documented Messages request, the code verifies, a signed StatusCallback moves the status', async () => {
      const to = phone();
      const created = await create(KEYS.tw, { to });
      assert.equal(created.delivery.status, 'queued');
      const request = await requestTo(twilio, (r) => r.form?.To === to);
      assert.equal(request.path, `/2010-04-01/Accounts/${TWILIO.accountSid}/Messages.json`);
      assert.equal(request.form!.From, '+15550001111');
      const callbackUrl = `${server.url}/v1/providers/twilio-a/callbacks`;
      assert.equal(request.form!.StatusCallback, callbackUrl);
      const code = /\b(\d{6})\b/.exec(request.form!.Body!)![1]!;
      assert.match(request.form!.Body!, /is your tw verification code/);

      const sent = await deliveryIs(KEYS.tw, created.id, 'sent');
      assert.equal(sent.delivery.provider, 'twilio-a');
      assert.equal(sent.delivery.test, false);

      const sid: string = request.answer.sid;
      const bad = await sendTwilioCallback(callbackUrl, { MessageSid: sid, MessageStatus: 'delivered', AccountSid: TWILIO.accountSid }, { authToken: 'not-the-token' });
      assert.equal(bad.status, 403, 'a callback signed with another token is refused');
      const forgedUrl = await sendTwilioCallback(callbackUrl, { MessageSid: sid, MessageStatus: 'delivered' }, { signedUrl: 'https://attacker.example/v1/providers/twilio-a/callbacks' });
      assert.equal(forgedUrl.status, 403, 'a signature over another URL is refused');
      const unsigned = await fetch(callbackUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `MessageSid=${sid}&MessageStatus=delivered` });
      assert.equal(unsigned.status, 403, 'an unsigned callback is refused');
      assert.equal((await view(KEYS.tw, created.id)).delivery.status, 'sent', 'refused callbacks changed nothing');

      await approves(KEYS.tw, created.id, code);
    });

    it('twilio receipts: delivered, then a late "sent" does not move it back; failures carry the error code', async () => {
      const to = phone();
      const created = await create(KEYS.tw, { to });
      await deliveryIs(KEYS.tw, created.id, 'sent');
      const requests = twilio.requests.filter((r) => r.form?.To === to);
      assert.equal(requests.length, 1, 'sent once');
      const sid: string = requests[0]!.answer.sid;
      const callbackUrl = `${server.url}/v1/providers/twilio-a/callbacks`;
      const delivered = await sendTwilioCallback(callbackUrl, { MessageSid: sid, MessageStatus: 'delivered', AccountSid: TWILIO.accountSid });
      assert.equal(delivered.status, 204);
      await deliveryIs(KEYS.tw, created.id, 'delivered');
      await sendTwilioCallback(callbackUrl, { MessageSid: sid, MessageStatus: 'sent', AccountSid: TWILIO.accountSid });
      assert.equal((await view(KEYS.tw, created.id)).delivery.status, 'delivered');
      const failed = await sendTwilioCallback(callbackUrl, { MessageSid: sid, MessageStatus: 'undelivered', ErrorCode: '30003' });
      assert.equal(failed.status, 204);
      const v = await deliveryIs(KEYS.tw, created.id, 'undelivered');
      assert.match(v.delivery.failureReason, /30003/);
      // A receipt for a message otpd never sent is acknowledged and changes nothing.
      assert.equal((await sendTwilioCallback(callbackUrl, { MessageSid: 'SM' + '0'.repeat(32), MessageStatus: 'failed' })).status, 204);
    });

    it('twilio WhatsApp and voice: whatsapp: addresses, and a call whose TwiML reads the code digit by digit', async () => {
      const to = phone();
      const wa = await create(KEYS.tw, { to, channel: 'whatsapp' });
      const message = await requestTo(twilio, (r) => r.form?.To === `whatsapp:${to}`);
      assert.equal(message.form!.From, 'whatsapp:+15550002222');
      await approves(KEYS.tw, wa.id, /\b(\d{6})\b/.exec(message.form!.Body!)![1]!);

      const callee = phone();
      const call = await create(KEYS.tw, { to: callee, channel: 'voice', locale: 'es' });
      const request = await requestTo(twilio, (r) => r.path.endsWith('/Calls.json') && r.form?.To === callee);
      assert.equal(request.form!.From, '+15550001111');
      const twiml = request.form!.Twiml!;
      assert.match(twiml, /^<\?xml version="1.0" encoding="UTF-8"\?><Response>/);
      assert.match(twiml, /<Say language="es-ES">Tu código de verificación de tw es/);
      const digits = /(\d(?:, \d){5})/.exec(twiml)![1]!.replace(/, /g, '');
      await approves(KEYS.tw, call.id, digits);
      const v = await deliveryIs(KEYS.tw, call.id, 'sent');
      const callSid: string = request.answer.sid;
      assert.match(callSid, /^CA/);
      await sendTwilioCallback(`${server.url}/v1/providers/twilio-a/callbacks`, { CallSid: callSid, CallStatus: 'completed', AccountSid: TWILIO.accountSid });
      await deliveryIs(KEYS.tw, call.id, 'delivered');
      assert.equal(v.delivery.provider, 'twilio-a');
    });

    it('vonage: the documented /sms/json form, and signed-by-token delivery receipts', async () => {
      const to = phone();
      const created = await create(KEYS.vg, { to, locale: 'hi' });
      const request = await requestTo(vonage, (r) => r.form?.to === to.slice(1));
      assert.equal(request.form!.from, 'OTPD');
      assert.equal(request.form!.type, 'unicode', 'Hindi text goes as UCS-2');
      assert.match(request.form!.text!, /सत्यापन कोड/);
      const callback = new URL(request.form!.callback!);
      assert.equal(callback.origin + callback.pathname, `${server.url}/v1/providers/vonage-a/callbacks`);
      assert.ok(callback.searchParams.get('token'), 'the callback URL carries a secret token (Vonage signs nothing by default)');
      await approves(KEYS.vg, created.id, /(\d{6})/.exec(request.form!.text!)![1]!);
      await deliveryIs(KEYS.vg, created.id, 'sent');

      const messageId: string = request.answer.messages[0]['message-id'];
      const receipt = { msisdn: to.slice(1), to: 'OTPD', 'network-code': '23410', messageId, price: '0.0333', status: 'delivered', scts: '2001011400', 'err-code': '0', 'message-timestamp': '2020-01-01 12:00:00' };
      const wrong = new URL(callback);
      wrong.searchParams.set('token', 'guess');
      assert.equal((await sendVonageReceipt(wrong.href, receipt)).status, 403);
      const noToken = new URL(callback.origin + callback.pathname);
      assert.equal((await sendVonageReceipt(noToken.href, receipt)).status, 403);
      assert.equal((await view(KEYS.vg, created.id)).delivery.status, 'sent');
      assert.equal((await sendVonageReceipt(callback.href, receipt)).status, 204);
      await deliveryIs(KEYS.vg, created.id, 'delivered');
    });

    it('msg91: the Flow API with the code as a template variable, and a tokened delivery report', async () => {
      const to = phone();
      const created = await create(KEYS.m91, { to });
      const request = await requestTo(msg91, (r) => r.json?.recipients?.[0]?.mobiles === to.slice(1));
      assert.equal(request.headers.authkey, MSG91.authKey);
      assert.equal(request.json.template_id, '6618c0ffee');
      assert.equal(request.json.sender, 'OTPDTS');
      assert.equal(request.json.recipients[0].APP, 'm91');
      await approves(KEYS.m91, created.id, request.json.recipients[0].OTP);
      await deliveryIs(KEYS.m91, created.id, 'sent');
      const requestId: string = request.answer.message;
      const url = `${server.url}/v1/providers/msg91-a/callbacks`;
      assert.equal((await sendMsg91Report(`${url}?token=wrong-token-wrong-token-wrong`, requestId, '1', 'DELIVERED')).status, 403);
      assert.equal((await sendMsg91Report(`${url}?token=${MSG91_TOKEN}`, requestId, '2', 'FAILED')).status, 204);
      const v = await deliveryIs(KEYS.m91, created.id, 'failed');
      assert.match(v.delivery.failureReason, /msg91 FAILED/);
      assert.equal(v.status, 'approved', 'a receipt changes the delivery, never the verification it belongs to');
    });

    it('webhook: a Standard Webhooks-signed POST, the receiver id recorded, signed reports accepted and forged ones refused', async () => {
      const to = phone();
      const created = await create(KEYS.hook, { to, locale: 'pt-BR', metadata: { plan: 'x' } });
      const request = await requestTo(hook, (r) => r.json?.data?.to === to);
      assert.equal(request.path, '/messages');
      assert.equal(request.json.type, 'otp.message');
      assert.equal(request.headers['webhook-id'], request.json.data.messageId);
      assert.match(request.json.data.messageId, /^msg_/);
      assert.equal(request.json.data.verificationId, created.id);
      assert.equal(request.json.data.locale, 'pt', 'pt-BR falls back to the shipped pt');
      assert.match(request.json.data.text, /é a sua senha de acesso ao hook/);
      assert.deepEqual(request.json.data.segments, { encoding: 'GSM-7', segments: 1 });
      await approves(KEYS.hook, created.id, request.json.data.code);
      const sent = await deliveryIs(KEYS.hook, created.id, 'sent');
      assert.equal(sent.delivery.provider, 'hook-a');

      const id: string = request.answer.id;
      const url = `${server.url}/v1/providers/hook-a/callbacks`;
      assert.equal((await sendWebhookReport(url, { type: 'message.status', data: { id, status: 'delivered' } }, 'whsec_' + Buffer.alloc(32, 1).toString('base64'))).status, 403);
      assert.equal((await sendWebhookReport(url, { type: 'message.status', data: { id, status: 'delivered' } }, WEBHOOK_SECRET, Math.floor(Date.now() / 1000) - 3_600)).status, 403, 'an old timestamp is a replay');
      assert.equal((await sendWebhookReport(url, { type: 'message.status', data: { id, status: 'delivered' } })).status, 204);
      await deliveryIs(KEYS.hook, created.id, 'delivered');
    });

    it('callbacks for a provider that does not exist or takes none are 404; they need no API key', async () => {
      const response = await fetch(`${server.url}/v1/providers/nope/callbacks`, { method: 'POST', body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(response.status, 404);
      const log = await fetch(`${server.url}/v1/providers/log/callbacks`, { method: 'POST' });
      assert.equal(log.status, 404);
    });
  });
}
