import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { isOtpdError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { openStoreFor } from '../../src/server.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { AppRecord, AuditEntry, Store } from '../../src/store/store.js';
import { TEST_SECRET } from '../helper.js';
import { REDIS_URL, STORE_BACKENDS } from '../support/backends.js';
import { runCli } from '../support/cli.js';
import { deleteKeysWithPrefix, inspectionClient, keysWithPrefix } from '../support/redis-keys.js';
import { NO_REQUEST } from '../../src/core/rate-limits.js';

/** The audit service over real stores with an injected clock: admin actions, context, retention, the CLI. */
const DAY = 86_400_000;

for (const backend of STORE_BACKENDS) {
  describe(`audit log (${backend.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-audit-'));
    const backendEnv = backend.env();
    const env = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_DEV_OUTBOX: join(dir, 'outbox.jsonl'), OTPD_LOG_LEVEL: 'silent', ...backendEnv };
    let now = Date.now();
    let store: Store;
    let services: Services;

    before(async () => {
      const config = loadConfig(env);
      store = await openStoreFor(config);
      services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent'), clock: () => now });
    });
    after(async () => {
      await services.drain();
      await services.background.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (backendEnv.OTPD_REDIS_PREFIX) {
        const client = inspectionClient(REDIS_URL);
        await deleteKeysWithPrefix(client, backendEnv.OTPD_REDIS_PREFIX).finally(() => client.disconnect());
      }
    });

    async function entries(app: AppRecord, event?: string): Promise<AuditEntry[]> {
      await services.audit.flush();
      return (await services.audit.list(app, { event, limit: 200 })).items;
    }

    it('records admin actions on apps and keys, with the setting names changed but not their values', async () => {
      const created = await services.apps.create('admin-audited', {});
      const app = created.app;
      await services.apps.update('admin-audited', { webhookUrl: 'https://hooks.example.com/otpd?token=s3cret', maxAttempts: 3 });
      const key = await services.apps.createKey('admin-audited');
      await services.apps.revokeKey(key.id);
      const log = await entries(app);
      assert.deepEqual(log.map((e) => e.event), ['key.revoked', 'key.created', 'app.updated', 'app.created']);
      assert.equal(log[0]!.resource, key.id);
      assert.equal(log[1]!.resource, key.id);
      assert.equal(log[2]!.details?.settings, 'webhookUrl,maxAttempts');
      assert.ok(!JSON.stringify(log).includes('s3cret'), 'setting values are not copied into the log');
      assert.ok(!JSON.stringify(log).includes(created.apiKey) && !JSON.stringify(log).includes(key.apiKey), 'no API key in the log');
      assert.equal(log[3]!.details?.keyId, created.keyId);
      await services.apps.delete('admin-audited');
      assert.equal((await entries(app, 'app.deleted')).length, 1, 'the deletion is recorded in the deleted app\'s log');
    });

    it('records the request context given, and none for work without a request', async () => {
      const { app } = await services.apps.create('context-audited', {});
      services.audit.record(app, 'verification.canceled', { resource: 've_x', destination: '+15555550123' }, { ip: '203.0.113.9', keyId: 'key_abc', userAgent: 'x'.repeat(300), requestId: 'req-1' });
      services.audit.record(app, 'verification.canceled', { resource: 've_y' }, NO_REQUEST);
      const [withoutContext, withContext] = await entries(app, 'verification.canceled');
      assert.deepEqual(
        { ip: withContext!.ip, keyId: withContext!.keyId, requestId: withContext!.requestId, ua: withContext!.userAgent?.length, masked: withContext!.destinationMasked },
        { ip: '203.0.113.9', keyId: 'key_abc', requestId: 'req-1', ua: 256, masked: '+1******0123' },
      );
      assert.equal(withContext!.destinationHash, services.audit.destinationHash(app.id, '+15555550123'));
      assert.deepEqual({ ip: withoutContext!.ip, keyId: withoutContext!.keyId, requestId: withoutContext!.requestId }, { ip: null, keyId: null, requestId: null });
      const { app: other } = await services.apps.create('context-other', {});
      assert.notEqual(services.audit.destinationHash(other.id, '+15555550123'), withContext!.destinationHash, 'hashes of two apps cannot be linked');
    });

    it('validates settings and filters', async () => {
      await assert.rejects(services.apps.update('context-audited', { webhookUrl: 'ftp://example.com/x' }), (error) => isOtpdError(error, 'VALIDATION') && /webhookUrl: must be an http/.test(error.message));
      await assert.rejects(services.apps.update('context-audited', { auditRetentionDays: 0 }), /auditRetentionDays: must be from 1 to 3650/);
      const app = await services.apps.get('context-audited');
      assert.throws(() => services.audit.list(app, { event: 'nope' }), /event: must be one of/);
      assert.throws(() => services.audit.list(app, { limit: 201 }), /limit: must be an integer from 1 to 200/);
    });

    it('keeps audit entries for auditRetentionDays and finished verifications for verificationRetentionDays', async () => {
      const start = now;
      const { app } = await services.apps.create('retained', { auditRetentionDays: 2, verificationRetentionDays: 1 });
      const early = await services.verifications.create(app, { to: '+15555550777', ttl: 60 }, NO_REQUEST);
      await services.verifications.cancel(app, early.id, NO_REQUEST);
      // Its message went out at once (the worker had room): its delivery entry is early too.
      await services.drain();
      now = start + DAY + DAY / 2;
      services.audit.record(app, 'verification.canceled', { resource: 've_later' }, NO_REQUEST);
      await services.audit.flush();
      now = start + 2 * DAY + 120_000;
      const removed = await services.personalData.applyRetention();
      const left = (await entries(app)).map((e) => e.resource);
      assert.ok(left.includes('ve_later'), 'an entry younger than the retention stays');
      assert.ok(!left.includes(early.id), 'entries older than 2 days are gone');
      assert.ok(removed.auditEntries >= 2);
      if (backend.name === 'sqlite') {
        assert.equal(removed.verifications, 1);
        assert.equal(await store.getVerification(app.id, early.id), undefined);
      } else {
        // Redis keeps a finished verification only 24 h after its expiry anyway (its key's TTL).
        assert.equal(removed.verifications, 0);
      }
      now = Date.now();
    });

    if (backend.name === 'redis') {
      it('gives the audit stream and the event queue an expiry (no key without one)', async () => {
        const { app } = await services.apps.create('ttl-check', { webhookUrl: 'http://127.0.0.1:9/hooks' });
        await services.verifications.create(app, { to: '+15555550888' }, NO_REQUEST);
        await services.audit.flush();
        const client = inspectionClient(REDIS_URL);
        try {
          const keys = (await keysWithPrefix(client, backendEnv.OTPD_REDIS_PREFIX!)).filter((k) => k.includes('{audit:') || k.includes('{events}'));
          assert.ok(keys.some((k) => k.endsWith(`{audit:${app.id}}:log`)));
          assert.ok(keys.some((k) => k.includes('{events}:e:')));
          for (const key of keys) assert.ok((await client.pttl(key)) > 0, `${key} has an expiry`);
          const streamKey = keys.find((k) => k.endsWith(`{audit:${app.id}}:log`))!;
          assert.ok((await client.pttl(streamKey)) > 364 * DAY, 'the stream lives as long as the retention');
        } finally {
          client.disconnect();
        }
      });
    }

    it('otpd audit prints an app\'s log, filtered, as text or JSON lines', async () => {
      await services.audit.flush();
      const json = (await runCli(['audit', '--app', 'context-audited', '--event', 'verification.canceled', '--json'], env));
      assert.equal(json.code, 0, json.stderr);
      const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line));
      assert.deepEqual(lines.map((l) => l.resource), ['ve_y', 've_x']);
      assert.equal(lines[1].ip, '203.0.113.9');
      const text = (await runCli(['audit', '--app', 'context-audited', '--limit', '1'], env));
      assert.equal(text.code, 0, text.stderr);
      assert.equal(text.stdout.trim().split('\n').length, 1);
      assert.match(text.stdout, /verification\.canceled|app\.created/);
      const bad = (await runCli(['audit', '--app', 'context-audited', '--event', 'nope'], env));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /event: must be one of/);
      assert.match((await runCli(['audit', '--since', 'yesterday'], env)).stderr, /--since: must be an ISO 8601/);
    });
  });
}
