import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { call, spawnServer } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-serve-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function codeFromOutbox(file: string, id: string): string {
  const line = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.verificationId === id);
  assert.ok(line, `no message for ${id}`);
  return line.code;
}

describe('otpd serve', () => {
  it('first start: generates a secret (0600), creates the default app and prints its key once', async () => {
    const database = join(dir, 'first', 'otpd.db');
    const server = await spawnServer({ OTPD_DATABASE: database, OTPD_SECRET: '', OTPD_API_KEY: '', NODE_ENV: '' });
    try {
      const key = /^\s+(otpd_[\w-]+)$/m.exec(server.stdout())?.[1];
      assert.ok(key, server.stdout());
      assert.match(server.stdout(), /curl -s http:\/\/127\.0\.0\.1:\d+\/v1\/verifications/);
      const created = await call(server.url, 'POST', '/v1/verifications', key!, { to: '+15555553001' });
      assert.equal(created.status, 201);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.match(server.stderr(), /\[otpd log provider\] sms to \+15555553001 .*: \d{6} is your default verification code/);
      assert.equal(statSync(join(dir, 'first', 'secret')).mode & 0o777, 0o600);
    } finally {
      await server.stop();
    }
    const again = await spawnServer({ OTPD_DATABASE: database, OTPD_SECRET: '', OTPD_API_KEY: '', NODE_ENV: '' });
    try {
      assert.doesNotMatch(again.stdout(), /shown once/);
    } finally {
      await again.stop();
    }
  });

  it('restart: a verification created before SIGKILL is still checkable after a restart on the same file', async () => {
    const env = {
      OTPD_DATABASE: join(dir, 'restart', 'otpd.db'),
      OTPD_SECRET: 'restart-secret-0123456789abcdefghijklmnop',
      OTPD_API_KEY: 'otpd_restart_key_0123456789',
      OTPD_DEV_OUTBOX: join(dir, 'restart', 'outbox.jsonl'),
    };
    const first = await spawnServer(env);
    const created = await call(first.url, 'POST', '/v1/verifications', env.OTPD_API_KEY, { to: '+15555553002' });
    assert.equal(created.status, 201);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.stop('SIGKILL');
    const second = await spawnServer(env);
    try {
      const code = codeFromOutbox(env.OTPD_DEV_OUTBOX, created.body.id);
      const checked = await call(second.url, 'POST', `/v1/verifications/${created.body.id}/check`, env.OTPD_API_KEY, { code });
      assert.equal(checked.body.valid, true);
    } finally {
      await second.stop();
    }
  });

  it('stops gracefully on SIGTERM with exit code 0', async () => {
    const server = await spawnServer({ OTPD_DATABASE: join(dir, 'term', 'otpd.db'), OTPD_SECRET: 'term-secret-0123456789abcdefghijklmnopqr' });
    assert.equal(await server.stop('SIGTERM'), 0);
  });

  it('refuses to start with bad configuration, naming each variable', async () => {
    await assert.rejects(
      spawnServer({ OTPD_DATABASE: join(dir, 'bad', 'otpd.db'), OTPD_PORT: 'eighty', OTPD_SECRET: 'short' }),
      (error: Error) => /OTPD_PORT: must be an integer/.test(error.message) && /OTPD_SECRET: must be at least 32 characters/.test(error.message) && !/\n\s+at \S+ \(/.test(error.message),
    );
  });

  it('refuses to start in production without OTPD_SECRET or with a dev outbox', async () => {
    await assert.rejects(
      spawnServer({ NODE_ENV: 'production', OTPD_SECRET: '', OTPD_DATABASE: join(dir, 'prod', 'otpd.db'), OTPD_DEV_OUTBOX: join(dir, 'prod', 'o.jsonl') }),
      (error: Error) => /OTPD_SECRET: required when NODE_ENV=production/.test(error.message) && /OTPD_DEV_OUTBOX: refused/.test(error.message),
    );
  });
});
