import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_SECRET } from '../helper.js';
import { call, spawnServer, type ServerProcess } from '../support/cli.js';
import { FakeProviders, until, WEBHOOK_SECRET, type FakeProvider } from '../support/fake-providers.js';
import { deleteKeysWithPrefix, inspectionClient } from '../support/redis-keys.js';
import { BACKENDS, phone } from './setup.js';

const API_KEY = 'otpd_test_key_crash_app_000001';

/**
 * The outbox survives a crash: otpd accepts a verification (201), starts sending, and is killed with
 * SIGKILL while the provider has not answered. A new process on the same store sends the message once
 * the dead process's lease runs out: one accepted delivery, under the same message id (the idempotency key
 * a provider uses to drop a duplicate), and the code in it verifies.
 */
for (const backend of BACKENDS) {
  describe(`a crash between accepting and sending loses no message (${backend})`, () => {
    let fakes: FakeProviders;
    let hook: FakeProvider;
    let dir: string;
    let env: Record<string, string>;
    const prefix = `otpd-test-crash-${randomBytes(6).toString('hex')}:`;
    const running: ServerProcess[] = [];

    before(async () => {
      fakes = await FakeProviders.start();
      hook = fakes.add('webhook', 'hook');
      dir = mkdtempSync(join(tmpdir(), 'otpd-crash-'));
      const configPath = join(dir, 'otpd.yaml');
      writeFileSync(
        configPath,
        `
providers:
  hook:
    type: webhook
    url: ${hook.baseUrl}/messages
    secret: \${HOOK_SECRET}
    timeoutSeconds: 30
apps:
  default:
    routes: { sms: [hook] }
outbox:
  pollIntervalMs: 50
  leaseSeconds: 2
`,
      );
      env = {
        OTPD_DATABASE: join(dir, 'otpd.db'),
        OTPD_SECRET: TEST_SECRET,
        OTPD_API_KEY: API_KEY,
        OTPD_CONFIG: configPath,
        OTPD_LOG_LEVEL: 'warn',
        HOOK_SECRET: WEBHOOK_SECRET,
        ...(backend === 'redis' ? { OTPD_REDIS_URL: 'redis://127.0.0.1:6379', OTPD_REDIS_PREFIX: prefix } : {}),
      };
    });
    after(async () => {
      for (const server of running) await server.stop('SIGKILL');
      await fakes?.close();
      rmSync(dir, { recursive: true, force: true });
      if (backend === 'redis') {
        const client = inspectionClient('redis://127.0.0.1:6379');
        try {
          await deleteKeysWithPrefix(client, prefix);
        } finally {
          client.disconnect();
        }
      }
    });

    it('SIGKILL while the provider has not answered; the next process sends it exactly once', async () => {
      hook.mode = 'hang';
      const first = await spawnServer(env);
      running.push(first);
      const to = phone();
      const created = await call(first.url, 'POST', '/v1/verifications', API_KEY, { to });
      assert.equal(created.status, 201);
      assert.equal(created.body.delivery.status, 'queued');
      const inFlight = await until('the first send to reach the provider', () => hook.requests.find((r) => r.json?.data?.to === to));

      assert.equal(await first.stop('SIGKILL'), null, 'killed, not exited');
      await until('the provider to see the connection drop', () => inFlight.aborted);
      hook.mode = 'ok';

      const second = await spawnServer(env);
      running.push(second);
      const delivered = await until('the message to be delivered by the new process', () => hook.accepted().find((r) => r.json?.data?.to === to), 15_000);
      // Give a duplicate every chance to show up: several poll intervals past the lease.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const toThisNumber = hook.requests.filter((r) => r.json?.data?.to === to);
      assert.equal(toThisNumber.filter((r) => r.accepted).length, 1, 'accepted exactly once');
      assert.equal(toThisNumber.length, 2, 'one try died with the process, one succeeded');
      assert.equal(delivered.headers['webhook-id'], inFlight.headers['webhook-id'], 'the retry carries the same idempotency key');
      assert.equal(delivered.json.data.code, inFlight.json.data.code);

      const check = await call(second.url, 'POST', `/v1/verifications/${created.body.id}/check`, API_KEY, { code: delivered.json.data.code });
      assert.equal(check.body.valid, true);
      const view = await call(second.url, 'GET', `/v1/verifications/${created.body.id}`, API_KEY);
      assert.equal(view.body.delivery.status, 'sent');
      assert.equal(view.body.delivery.provider, 'hook');
      await second.stop();
    });
  });
}
