import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { call, runCli, spawnServer, type ServerProcess } from '../support/cli.js';
import { deleteKeysWithPrefix, uniquePrefix } from '../support/redis-keys.js';

/**
 * Two real otpd processes on one Redis behave as one: attempts counted on one are counted for both, a
 * code approved on one is never approved again on the other, quotas are shared.
 */
const REDIS_URL = 'redis://127.0.0.1:6379';
const prefix = uniquePrefix('multi');
const dir = mkdtempSync(join(tmpdir(), 'otpd-multi-'));
const env = {
  OTPD_REDIS_URL: REDIS_URL,
  OTPD_REDIS_PREFIX: prefix,
  OTPD_SECRET: 'multi-instance-secret-0123456789abcdefgh',
  OTPD_API_KEY: 'otpd_multi_instance_key_0123456789',
  OTPD_DEV_OUTBOX: join(dir, 'outbox.jsonl'),
  OTPD_DATABASE: join(dir, 'unused.db'),
  OTPD_LOG_LEVEL: 'warn',
};
let a: ServerProcess;
let b: ServerProcess;

before(async () => {
  a = await spawnServer(env);
  b = await spawnServer(env);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  const client = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(client, prefix);
  client.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

async function codeFor(id: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    let lines: Array<{ verificationId: string; code: string }> = [];
    try {
      lines = readFileSync(env.OTPD_DEV_OUTBOX, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
    } catch {
      /* not written yet */
    }
    const found = lines.find((m) => m.verificationId === id);
    if (found) return found.code;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no message for ${id}`);
}

const key = env.OTPD_API_KEY;
const servers = () => [a.url, b.url];

describe('two otpd processes on one Redis', () => {
  it('creates on A and checks on B', async () => {
    const created = await call(a.url, 'POST', '/v1/verifications', key, { to: '+15555554001' });
    assert.equal(created.status, 201);
    const code = await codeFor(created.body.id);
    const wrong = await call(b.url, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code: code === '000000' ? '111111' : '000000' });
    assert.equal(wrong.body.attempts, 1);
    assert.equal((await call(a.url, 'GET', `/v1/verifications/${created.body.id}`, key)).body.attempts, 1);
    const right = await call(b.url, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code });
    assert.equal(right.body.valid, true);
    assert.equal((await call(a.url, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code })).body.valid, false);
  });

  it('T1/T2: 200 concurrent wrong checks split over A and B never exceed maxAttempts', async () => {
    const created = await call(a.url, 'POST', '/v1/verifications', key, { to: '+15555554002', maxAttempts: 5 });
    const code = await codeFor(created.body.id);
    const wrong = code === '000000' ? '111111' : '000000';
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => call(servers()[i % 2]!, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code: wrong })),
    );
    assert.ok(results.every((r) => r.status === 200 && r.body.attempts <= 5));
    const state = await call(b.url, 'GET', `/v1/verifications/${created.body.id}`, key);
    assert.equal(state.body.attempts, 5);
    assert.equal(state.body.status, 'max_attempts_reached');
    assert.equal((await call(a.url, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code })).body.valid, false);
  });

  it('T2: 20 concurrent right checks split over A and B approve exactly once', async () => {
    const created = await call(b.url, 'POST', '/v1/verifications', key, { to: '+15555554003' });
    const code = await codeFor(created.body.id);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(servers()[i % 2]!, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code })));
    assert.equal(results.filter((r) => r.body.valid === true).length, 1);
  });

  it('shares the per-key hourly quota between instances', async () => {
    const created = (await runCli(['apps', 'create', 'quota-app', '--api-calls-per-hour', '10', '--json'], env));
    assert.equal(created.code, 0, created.stderr);
    const { apiKey } = JSON.parse(created.stdout);
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => call(servers()[i % 2]!, 'GET', '/v1/verifications/ve_none', apiKey)));
    assert.equal(results.filter((r) => r.status === 404).length, 10);
    const refused = results.filter((r) => r.status === 403);
    assert.equal(refused.length, 6);
    assert.equal(refused[0]!.body.detail, 'API Key usage limit reached! Allowed rate is 10 API calls per hour');
  });
});
