import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { appWith, messagesTo, usNumber } from './support.js';

/**
 * Standards O5 (OWASP API4:2023, ASVS 5 2.4.1): SMS pumping and toll-fraud defences, through HTTP on each
 * store. "The provider was called" is read from the dev outbox, which is where the provider writes.
 */
for (const backend of STORE_BACKENDS) {
  describe(`O5 on ${backend.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend.env());
    });
    after(() => server.close());

    const create = (body: Record<string, unknown>, apiKey?: string) => server.request('POST', '/v1/verifications', body, apiKey === undefined ? {} : { apiKey });

    it('O5: two sends to one number inside the cooldown: the second is 429 and the provider is called once', async () => {
      const to = usNumber();
      const first = await create({ to });
      assert.equal(first.status, 201, first.text);
      const second = await create({ to });
      assert.equal(second.status, 429, second.text);
      assert.match(second.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(second.body.type, 'urn:otpd:problem:rate-limited');
      assert.equal(second.body.limit, 'destination-cooldown');
      const retryAfter = Number(second.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
      assert.equal(await messagesTo(server, to, 1), 1);
      // The first verification is untouched: still pending, its code still works.
      const code = await server.codeFor(first.body.id);
      assert.equal((await server.request('POST', `/v1/verifications/${first.body.id}/check`, { code })).body.valid, true);
    });

    it('O5: a number outside the country allow-list is refused before the provider, and nothing is stored', async () => {
      const apiKey = await appWith(server, 'us-only', { allowedCountries: ['US'] });
      for (const to of ['+442079460123', '+8821234567890']) {
        const refused = await create({ to }, apiKey);
        assert.equal(refused.status, 400, refused.text);
        assert.equal(refused.body.errors[0].field, 'to');
        assert.equal(refused.body.limit, 'country-not-allowed');
        // Nothing pending for that destination: the verification was never stored.
        const check = await server.request('POST', '/v1/verifications/check', { to, code: '123456' }, { apiKey });
        assert.equal(check.status, 404, check.text);
        assert.equal(await messagesTo(server, to, 1), 0);
      }
      const allowed = await create({ to: usNumber() }, apiKey);
      assert.equal(allowed.status, 201, allowed.text);
      // Email has no country: the allow-list does not apply to it.
      assert.equal((await create({ to: 'someone@example.com' }, apiKey)).status, 201);
    });

    it('O5: at most 5 sends per destination per 10 minutes across verifications (Twilio\'s default)', async () => {
      const apiKey = await appWith(server, 'no-cooldown', { destinationCooldown: 0 });
      const to = usNumber();
      for (let i = 0; i < 5; i++) assert.equal((await create({ to }, apiKey)).status, 201);
      const sixth = await create({ to }, apiKey);
      assert.equal(sixth.status, 429, sixth.text);
      assert.equal(sixth.body.limit, 'sends-per-destination');
      assert.equal(sixth.body.max, 5);
      assert.equal(sixth.body.windowSeconds, 600);
      assert.ok(Number(sixth.headers.get('retry-after')) > 0);
      // Each create supersedes the last (decisions 2) and the outbox may drop a superseded message unsent:
      // the provider is called at most once per accepted send, never for the refused one.
      const sent = await messagesTo(server, to, 5);
      assert.ok(sent >= 1 && sent <= 5, `${sent} messages`);
    });

    it('O5: resends count towards the destination\'s sends and refused resends send nothing', async () => {
      const apiKey = await appWith(server, 'resend-limits', { destinationCooldown: 0, resendCooldown: 0, maxSends: 20, rateLimits: { 'sends-per-destination': { max: 3, windowSeconds: 600 } } });
      const to = usNumber();
      const v = (await create({ to }, apiKey)).body;
      assert.equal((await server.request('POST', `/v1/verifications/${v.id}/resend`, undefined, { apiKey })).status, 200);
      assert.equal((await server.request('POST', `/v1/verifications/${v.id}/resend`, undefined, { apiKey })).status, 200);
      const refused = await server.request('POST', `/v1/verifications/${v.id}/resend`, undefined, { apiKey });
      assert.equal(refused.status, 429);
      assert.equal(refused.body.limit, 'sends-per-destination');
      const sent = await messagesTo(server, to, 3);
      assert.ok(sent >= 1 && sent <= 3, `${sent} messages`);
      assert.equal((await server.request('GET', `/v1/verifications/${v.id}`, undefined, { apiKey })).body.sends, 3);
    });

    it('O5: per-key verification quota: each API key has its own count', async () => {
      const apiKey = await appWith(server, 'key-quota', { rateLimits: { 'verifications-per-key': { max: 3, windowSeconds: 3600 } } });
      for (let i = 0; i < 3; i++) assert.equal((await create({ to: usNumber() }, apiKey)).status, 201);
      const refused = await create({ to: usNumber() }, apiKey);
      assert.equal(refused.status, 429);
      assert.equal(refused.body.limit, 'verifications-per-key');
      const other = await server.server.services.apps.createKey('key-quota');
      assert.equal((await create({ to: usNumber() }, other.apiKey)).status, 201);
    });

    it('caller buckets: rateLimits {user_id} counts against the app\'s bucket; unknown buckets are named', async () => {
      const apiKey = await appWith(server, 'buckets', { rateLimitBuckets: { user_id: { max: 2, windowSeconds: 600 } } });
      assert.equal((await create({ to: usNumber(), rateLimits: { user_id: 'u-42' } }, apiKey)).status, 201);
      assert.equal((await create({ to: usNumber(), rateLimits: { user_id: 'u-42' } }, apiKey)).status, 201);
      const third = await create({ to: usNumber(), rateLimits: { user_id: 'u-42' } }, apiKey);
      assert.equal(third.status, 429);
      assert.equal(third.body.limit, 'bucket:user_id');
      assert.equal((await create({ to: usNumber(), rateLimits: { user_id: 'u-43' } }, apiKey)).status, 201);
      const unknown = await create({ to: usNumber(), rateLimits: { device: 'd-1' } }, apiKey);
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.errors[0].field, 'rateLimits.device');
    });

    it('O5: the daily spend cap refuses sends that would pass it, per channel, at the app\'s prices', async () => {
      const apiKey = await appWith(server, 'spend', { destinationCooldown: 0, prices: { sms: { '+1': 1, '*': 5 } }, dailySpendCap: { sms: 3.5 } });
      for (let i = 0; i < 3; i++) assert.equal((await create({ to: usNumber() }, apiKey)).status, 201);
      const over = await create({ to: usNumber() }, apiKey);
      assert.equal(over.status, 429);
      assert.equal(over.body.limit, 'daily-spend-cap');
      const retryAfter = Number(over.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 86_400, `Retry-After ${retryAfter}`);
      const expensive = await create({ to: '+442079460123' }, apiKey);
      assert.equal(expensive.status, 429);
      assert.equal((await create({ to: 'spend@example.com' }, apiKey)).status, 201, 'email has no price and no cap');
    });

    it('O5: per-prefix velocity: the longest configured prefix counts', async () => {
      const apiKey = await appWith(server, 'velocity', { destinationCooldown: 0, prefixLimits: { '+4420': { max: 2, windowSeconds: 3600 }, '*': { max: 100, windowSeconds: 3600 } } });
      assert.equal((await create({ to: '+442079460001' }, apiKey)).status, 201);
      assert.equal((await create({ to: '+442079460002' }, apiKey)).status, 201);
      const third = await create({ to: '+442079460003' }, apiKey);
      assert.equal(third.status, 429);
      assert.equal(third.body.limit, 'sends-per-prefix');
      assert.equal(await messagesTo(server, '+442079460003', 1), 0);
      assert.equal((await create({ to: '+447400123456' }, apiKey)).status, 201, 'another GB prefix counts under *');
    });

    it('O5: a prefix whose codes are sent but never entered is blocked; one that converts is not', async () => {
      const guard = { minSends: 5, minApprovalRate: 0.5, windowSeconds: 3600, blockSeconds: 600, prefixDigits: 4 };
      const apiKey = await appWith(server, 'pumped', { conversionGuard: guard });
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) {
        const to = `+1202555${String(100 + i).padStart(4, '0')}`;
        assert.equal((await create({ to }, apiKey)).status, 201);
        sent.push(to);
      }
      const to = '+12025550199';
      const blocked = await create({ to }, apiKey);
      assert.equal(blocked.status, 429, blocked.text);
      assert.equal(blocked.body.limit, 'prefix-blocked');
      assert.ok(Number(blocked.headers.get('retry-after')) > 500);
      assert.equal(await messagesTo(server, to, 1), 0, 'the provider was not called for the blocked prefix');
      assert.equal((await create({ to: '+14155550123' }, apiKey)).status, 201, 'other prefixes still send');

      const convertingKey = await appWith(server, 'converting', { conversionGuard: guard });
      for (let i = 0; i < 8; i++) {
        const v = await create({ to: `+1202555${String(200 + i).padStart(4, '0')}` }, convertingKey);
        assert.equal(v.status, 201, `send ${i + 1}: ${v.text}`);
        const code = await server.codeFor(v.body.id);
        assert.equal((await server.request('POST', `/v1/verifications/${v.body.id}/check`, { code }, { apiKey: convertingKey })).body.valid, true);
      }
    });
  });
}
