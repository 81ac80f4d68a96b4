import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { call, spawnServer } from '../support/cli.js';
import { deleteKeysWithPrefix, uniquePrefix } from '../support/redis-keys.js';

/** `otpd serve --workers 2`: node:cluster workers sharing one port and one store stay correct. */
const dir = mkdtempSync(join(tmpdir(), 'otpd-workers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function codeFor(outbox: string, id: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      const found = readFileSync(outbox, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.verificationId === id);
      if (found) return found.code;
    } catch {
      /* not written yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no message for ${id}`);
}

for (const backend of ['sqlite', 'redis'] as const) {
  describe(`--workers 2 on ${backend}`, () => {
    it('T2: concurrent wrong and right checks through two workers keep the limits', async () => {
      const prefix = uniquePrefix('workers');
      const outbox = join(dir, `${backend}-outbox.jsonl`);
      const env: Record<string, string> = {
        OTPD_DATABASE: join(dir, `${backend}.db`),
        OTPD_SECRET: 'workers-secret-0123456789abcdefghijklmnop',
        OTPD_API_KEY: 'otpd_workers_key_0123456789abcdef',
        OTPD_DEV_OUTBOX: outbox,
        OTPD_LOG_LEVEL: 'warn',
        ...(backend === 'redis' ? { OTPD_REDIS_URL: 'redis://127.0.0.1:6379', OTPD_REDIS_PREFIX: prefix } : {}),
      };
      const server = await spawnServer(env, ['--workers', '2']);
      try {
        const key = env.OTPD_API_KEY!;
        const created = await call(server.url, 'POST', '/v1/verifications', key, { to: '+15555555001', maxAttempts: 5 });
        assert.equal(created.status, 201);
        const code = await codeFor(outbox, created.body.id);
        const wrong = code === '000000' ? '111111' : '000000';
        const results = await Promise.all(Array.from({ length: 100 }, () => call(server.url, 'POST', `/v1/verifications/${created.body.id}/check`, key, { code: wrong })));
        assert.ok(results.every((r) => r.status === 200));
        assert.equal((await call(server.url, 'GET', `/v1/verifications/${created.body.id}`, key)).body.attempts, 5);

        const fresh = await call(server.url, 'POST', '/v1/verifications', key, { to: '+15555555002' });
        const freshCode = await codeFor(outbox, fresh.body.id);
        const rights = await Promise.all(Array.from({ length: 20 }, () => call(server.url, 'POST', `/v1/verifications/${fresh.body.id}/check`, key, { code: freshCode })));
        assert.equal(rights.filter((r) => r.body.valid === true).length, 1);
      } finally {
        assert.equal(await server.stop('SIGTERM'), 0);
        if (backend === 'redis') {
          const client = new Redis('redis://127.0.0.1:6379');
          await deleteKeysWithPrefix(client, prefix);
          client.disconnect();
        }
      }
    });
  });
}
