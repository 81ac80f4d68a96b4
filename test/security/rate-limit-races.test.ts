import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { appWith, messagesTo, usNumber } from './support.js';

/**
 * The T2 race tests again, now through the rate limiters: limits are separate atomic counters on the
 * store, and a request refused by a later limit gives back what the earlier ones counted, so concurrency
 * can neither push attempts past maxAttempts nor admit more than a limit.
 */
for (const backend of STORE_BACKENDS) {
  describe(`rate limits under concurrency on ${backend.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend.env());
    });
    after(() => server.close());

    it('T2: 200 concurrent wrong checks with limits on: attempts never pass maxAttempts and exactly the limit is admitted', async () => {
      const apiKey = await appWith(server, 'race-checks', {
        rateLimits: { 'checks-per-key': { max: 150, windowSeconds: 3600 }, 'checks-per-verification': { max: 100, windowSeconds: 600 } },
      });
      const v = (await server.request('POST', '/v1/verifications', { to: usNumber(), maxAttempts: 5 }, { apiKey })).body;
      const code = await server.codeFor(v.id);
      const wrong = code === '000000' ? '111111' : '000000';
      const results = await Promise.all(Array.from({ length: 200 }, () => server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrong }, { apiKey })));
      const admitted = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      assert.equal(admitted.length + refused.length, 200, 'only 200 and 429 answers');
      // The per-key limit (150) admits first, then the per-verification one (100) refuses: refunds keep the
      // per-key count at exactly the admitted checks, so exactly 100 get through. Checks that arrive in one
      // burst may all meet the per-key limit before the first refunds land (a store call per limit, and
      // Redis answers one turn's calls together), so up to 50 are refused by it instead: still exactly 100.
      assert.equal(admitted.length, 100);
      const perKey = refused.filter((r) => r.body.limit === 'checks-per-key').length;
      assert.ok(perKey <= 50, `${perKey} refused by the per-key limit`);
      assert.ok(refused.every((r) => (r.body.limit === 'checks-per-verification' || r.body.limit === 'checks-per-key') && Number(r.headers.get('retry-after')) > 0));
      assert.ok(admitted.every((r) => r.body.valid === false && r.body.attempts <= 5), 'an answer reported more attempts than allowed');
      const state = (await server.request('GET', `/v1/verifications/${v.id}`, undefined, { apiKey })).body;
      assert.equal(state.attempts, 5);
      assert.equal(state.status, 'max_attempts_reached');
      // The key still has 50 checks left: the refused ones were given back.
      const other = (await server.request('POST', '/v1/verifications', { to: usNumber() }, { apiKey })).body;
      for (let i = 0; i < 50; i++) assert.equal((await server.request('POST', `/v1/verifications/${other.id}/check`, { code: wrong }, { apiKey })).status, 200, `check ${i + 1}`);
      const over = await server.request('POST', `/v1/verifications/${other.id}/check`, { code: wrong }, { apiKey });
      assert.equal(over.status, 429);
      assert.equal(over.body.limit, 'checks-per-key');
    });

    it('30 concurrent creates to one destination under a limit of 4: exactly 4 are accepted', async () => {
      const apiKey = await appWith(server, 'race-creates', { destinationCooldown: 0, rateLimits: { 'sends-per-destination': { max: 4, windowSeconds: 600 } } });
      const to = usNumber();
      const results = await Promise.all(Array.from({ length: 30 }, () => server.request('POST', '/v1/verifications', { to }, { apiKey })));
      assert.equal(results.filter((r) => r.status === 201).length, 4);
      const refused = results.filter((r) => r.status !== 201);
      assert.ok(refused.every((r) => r.status === 429 && r.body.limit === 'sends-per-destination'), JSON.stringify(refused.find((r) => r.status !== 429)?.body));
      // A create supersedes the destination's pending verification (decisions 2), and the outbox may skip a
      // superseded one's message: at most the 4 accepted sends reach the provider.
      const sent = await messagesTo(server, to, 4);
      assert.ok(sent >= 1 && sent <= 4, `${sent} messages`);
    });

    it('30 concurrent creates to one destination inside the cooldown: exactly one is accepted and sent', async () => {
      const to = usNumber();
      const results = await Promise.all(Array.from({ length: 30 }, () => server.request('POST', '/v1/verifications', { to })));
      assert.equal(results.filter((r) => r.status === 201).length, 1);
      assert.ok(results.filter((r) => r.status !== 201).every((r) => r.status === 429 && r.body.limit === 'destination-cooldown'));
      assert.equal(await messagesTo(server, to, 1), 1);
    });

    it('a refused create gives back what earlier limits counted', async () => {
      // Per key 3, per destination 1 (cooldown off): the refusals for the busy destination must not use up the key.
      const apiKey = await appWith(server, 'race-refund', {
        destinationCooldown: 0,
        rateLimits: { 'verifications-per-key': { max: 3, windowSeconds: 3600 }, 'sends-per-destination': { max: 1, windowSeconds: 600 } },
      });
      const busy = usNumber();
      assert.equal((await server.request('POST', '/v1/verifications', { to: busy }, { apiKey })).status, 201);
      for (let i = 0; i < 5; i++) assert.equal((await server.request('POST', '/v1/verifications', { to: busy }, { apiKey })).body.limit, 'sends-per-destination');
      assert.equal((await server.request('POST', '/v1/verifications', { to: usNumber() }, { apiKey })).status, 201);
      assert.equal((await server.request('POST', '/v1/verifications', { to: usNumber() }, { apiKey })).status, 201);
      assert.equal((await server.request('POST', '/v1/verifications', { to: usNumber() }, { apiKey })).body.limit, 'verifications-per-key');
    });
  });
}
