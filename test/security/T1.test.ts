import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { usNumber, wrongCode } from './support.js';

/**
 * Standards T1 (NIST 800-63B 5.2.2): failed attempts are limited per code across sessions, instances, IPs
 * and API keys. On Redis two otpd instances in this process share one key prefix and each guess goes to
 * the other instance, with another API key and another client address. SQLite is shared between
 * processes, not between two stores in one process (a synchronous busy wait would block the very event
 * loop that must commit): there the guesses rotate keys and addresses on one instance, and
 * test/scale/workers.test.ts covers several processes on one file.
 */
for (const backend of STORE_BACKENDS) {
  describe(`T1 on ${backend.name}`, () => {
    let a: TestServer;
    let b: TestServer;
    const keys: string[] = [];

    before(async () => {
      const env = { ...backend.env(), OTPD_TRUST_PROXY: '1' };
      a = await startTestServer(env);
      // The same Redis prefix is in env, so B shares A's store.
      b = backend.name === 'redis' ? await startTestServer(env) : a;
      keys.push(a.apiKey);
      if (b !== a) keys.push(b.apiKey);
      while (keys.length < 6) keys.push((await a.server.services.apps.createKey('default')).apiKey);
    });
    after(async () => {
      if (b !== a) await b.close();
      await a.close();
    });

    /** The code of a verification, from whichever instance's outbox the message went to. */
    async function codeOf(id: string): Promise<string> {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const found = [...a.messages(), ...(b === a ? [] : b.messages())].find((m) => m.verificationId === id);
        if (found) return found.code;
        await delay(10);
      }
      throw new Error(`no message for ${id}`);
    }

    for (const maxAttempts of [1, 5]) {
      it(`T1: ${maxAttempts} + 1 wrong guesses rotating instances, API keys and addresses lock it; the right code is then rejected`, async () => {
        const created = await a.request('POST', '/v1/verifications', { to: usNumber(), maxAttempts });
        assert.equal(created.status, 201, created.text);
        const id = created.body.id;
        const code = await codeOf(id);
        for (let i = 1; i <= maxAttempts + 1; i++) {
          const instance = i % 2 === 0 ? a : b;
          const response = await instance.request('POST', `/v1/verifications/${id}/check`, { code: wrongCode(code) }, {
            apiKey: keys[i % keys.length]!,
            headers: { 'x-forwarded-for': `198.51.100.${i}` },
          });
          assert.equal(response.status, 200, response.text);
          assert.equal(response.body.valid, false);
          assert.equal(response.body.attempts, Math.min(i, maxAttempts), `guess ${i}`);
          assert.equal(response.body.status, i >= maxAttempts ? 'max_attempts_reached' : 'pending');
        }
        for (const instance of [a, b]) {
          const right = await instance.request('POST', `/v1/verifications/${id}/check`, { code }, { apiKey: keys[5]!, headers: { 'x-forwarded-for': '203.0.113.77' } });
          assert.equal(right.body.valid, false, 'the right code after the lock');
          assert.equal(right.body.status, 'max_attempts_reached');
        }
      });
    }

    it('T1: a new verification for the same number carries the failed attempts over (decisions 2), on either instance', async () => {
      const to = usNumber();
      // The destination cooldown would refuse the second create at once; this app turns it off.
      const { apiKey } = await a.server.services.apps.create(`carry-${backend.name}`, { destinationCooldown: 0 });
      const first = (await a.request('POST', '/v1/verifications', { to, maxAttempts: 3 }, { apiKey })).body;
      const code = await codeOf(first.id);
      for (let i = 0; i < 2; i++) await b.request('POST', `/v1/verifications/${first.id}/check`, { code: wrongCode(code) }, { apiKey });
      const second = await b.request('POST', '/v1/verifications', { to, maxAttempts: 3 }, { apiKey });
      assert.equal(second.status, 201, second.text);
      assert.equal(second.body.attempts, 2);
      const secondCode = await codeOf(second.body.id);
      const last = await a.request('POST', `/v1/verifications/${second.body.id}/check`, { code: wrongCode(secondCode) }, { apiKey });
      assert.equal(last.body.status, 'max_attempts_reached');
      assert.equal((await b.request('POST', `/v1/verifications/${second.body.id}/check`, { code: secondCode }, { apiKey })).body.valid, false);
    });
  });
}
