import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { Keyring } from '../../src/core/keyring.js';
import { base32Decode, totp } from '../../src/core/otp.js';
import { isOtpdError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { openStoreFor } from '../../src/server.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { Store } from '../../src/store/store.js';
import { REDIS_URL, STORE_BACKENDS } from '../support/backends.js';
import { runCli } from '../support/cli.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { deleteKeysWithPrefix, inspectionClient, uniquePrefix } from '../support/redis-keys.js';
import { NO_REQUEST } from '../../src/core/rate-limits.js';

/**
 * `otpd secrets rotate` (docs/security.md "Secrets and rotation") over real stores: values written under
 * the old secret are re-encrypted under the new one, so a server with only the new secret reads them all.
 */
const OLD = 'rotation-old-secret-0123456789-abcdefghijklmnop';
const NEW = 'rotation-new-secret-9876543210-ponmlkjihgfedcba';

async function dropRedisPrefix(prefix: string): Promise<void> {
  const client = inspectionClient(REDIS_URL);
  try {
    await deleteKeysWithPrefix(client, prefix);
  } finally {
    client.disconnect();
  }
}

/** SQLite, Redis, and a spawned 3-master Redis Cluster: listing records walks every master there. */
let cluster: RedisCluster | undefined;
after(async () => {
  await cluster?.stop();
});
const BACKENDS: { name: string; env(): Promise<Record<string, string>> }[] = [
  ...STORE_BACKENDS.map((backend) => ({ name: backend.name, env: async () => backend.env() })),
  {
    name: 'redis-cluster',
    async env() {
      cluster ??= await startRedisCluster();
      return { OTPD_REDIS_URL: cluster.urls.join(','), OTPD_REDIS_CLUSTER: '1', OTPD_REDIS_PREFIX: uniquePrefix('rotation') };
    },
  },
];

for (const backend of BACKENDS) {
  describe(`secrets rotation (${backend.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-rotation-'));
    let env: Record<string, string> = {};
    const opened: Store[] = [];
    let now = Date.now();

    async function servicesWith(secrets: Record<string, string>): Promise<Services> {
      const config = loadConfig({ ...env, ...secrets });
      const store = await openStoreFor(config);
      opened.push(store);
      return createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent'), clock: () => now });
    }

    let encryptKey: string;
    let factorId: string;
    let factorSecret: string;
    let webhookSecret: string;

    before(async () => {
      env = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_LOG_LEVEL: 'silent', ...(await backend.env()) };
      const old = await servicesWith({ OTPD_SECRET: OLD });
      const created = await old.apps.create('rotating', {});
      encryptKey = created.credentials.encryptKey;
      const enrolment = await old.factors.enrol(created.app, { type: 'totp', account: 'person@example.com' });
      factorId = enrolment.factor.id;
      factorSecret = enrolment.secret;
      assert.equal((await old.factors.verify(created.app, factorId, totp(base32Decode(factorSecret)!, now, { algorithm: 'SHA1', digits: 6, period: 30 }), NO_REQUEST)).valid, true);
      await old.factors.issueRecoveryCodes(created.app, factorId);
      webhookSecret = (await old.events.webhookSecret(created.app)).secret;
    });
    after(async () => {
      for (const store of opened) await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (env.OTPD_REDIS_PREFIX && !env.OTPD_REDIS_CLUSTER) await dropRedisPrefix(env.OTPD_REDIS_PREFIX);
    });

    it('without the old secret, what it wrote fails closed', async () => {
      const only = await servicesWith({ OTPD_SECRET: NEW });
      const app = await only.apps.get('rotating');
      await assert.rejects(only.apps.credentialsOf(app), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
      await assert.rejects(only.factors.verify(app, factorId, '123456', NO_REQUEST), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
    });

    it('a dry run counts and changes nothing; the rotation re-encrypts everything; a second run finds nothing to do', async () => {
      const rotating = await servicesWith({ OTPD_SECRET: NEW, OTPD_SECRET_PREVIOUS: OLD });
      const dry = await rotating.secretsRotation.rotate({ dryRun: true });
      assert.equal(dry.currentKid, new Keyring(NEW).currentKid);
      assert.deepEqual(dry.previousKids, [new Keyring(OLD).currentKid]);
      const count = (report: typeof dry, namespace: string) => report.namespaces.find((ns) => ns.namespace === namespace)!;
      assert.equal(count(dry, 'factor').rewrapped, 1);
      assert.equal(count(dry, 'app-credentials').rewrapped, 1);
      assert.equal(count(dry, 'webhook-secret').rewrapped, 1);
      assert.equal(count(await rotating.secretsRotation.rotate({ dryRun: true }), 'factor').rewrapped, 1, 'the dry run wrote nothing');

      const report = await rotating.secretsRotation.rotate();
      for (const ns of ['factor', 'app-credentials', 'webhook-secret']) {
        assert.equal(count(report, ns).rewrapped, 1, ns);
        assert.equal(count(report, ns).failed, 0, ns);
      }
      assert.equal(count(report, 'factor').staleHashes, 1, 'recovery-code hashes cannot be re-made and are reported');
      const again = await rotating.secretsRotation.rotate();
      for (const ns of again.namespaces) assert.equal(ns.rewrapped, 0, `${ns.namespace}: nothing left to do`);
      assert.equal(count(again, 'factor').current, 1);
    });

    it('afterwards a server with only the new secret reads every secret', async () => {
      const only = await servicesWith({ OTPD_SECRET: NEW });
      const app = await only.apps.get('rotating');
      assert.equal((await only.apps.credentialsOf(app)).encryptKey, encryptKey);
      assert.equal((await only.events.webhookSecret(app)).secret, webhookSecret);
      now += 60_000;
      const code = totp(base32Decode(factorSecret)!, now, { algorithm: 'SHA1', digits: 6, period: 30 });
      assert.equal((await only.factors.verify(app, factorId, code, NO_REQUEST)).valid, true);
    });

    it('re-wraps a record a server changes during the rotation, and reports one under an unknown key', async () => {
      const rotating = await servicesWith({ OTPD_SECRET: NEW, OTPD_SECRET_PREVIOUS: OLD });
      const keyring = new Keyring(NEW, OLD);
      const store = opened[opened.length - 1]!;
      const oldRing = new Keyring(OLD);
      const namespace = `rotation-test-${backend.name}`;
      await store.putRecord(namespace, 'busy', { blob: oldRing.encrypt('dialect-secret', 'first', 'busy'), n: 1 }, {}, now);
      await store.putRecord(namespace, 'lost', { blob: new Keyring('a-third-secret-nobody-configured-0123456789').encrypt('dialect-secret', 'x', 'lost'), n: 1 }, {}, now);
      let interfered = false;
      rotating.secretsRotation.register({
        namespace,
        rewrap(value: { blob: string; n: number }, id: string, ring: Keyring) {
          if (Keyring.kidOf(value.blob) === ring.currentKid) return undefined;
          const plain = ring.decrypt('dialect-secret', value.blob, id);
          if (id === 'busy' && !interfered) {
            interfered = true;
            // A server writes the record between the rotation's read and its write.
            void store.putRecord(namespace, 'busy', { blob: oldRing.encrypt('dialect-secret', 'second', 'busy'), n: 2 }, {}, now);
          }
          return { ...value, blob: ring.encrypt('dialect-secret', plain, id) };
        },
      });
      const report = (await rotating.secretsRotation.rotate()).namespaces.find((ns) => ns.namespace === namespace)!;
      assert.equal(report.rewrapped, 1);
      assert.equal(report.failed, 1);
      assert.deepEqual(report.failedIds, ['lost']);
      const busy = await store.getRecord<{ blob: string; n: number }>(namespace, 'busy', now);
      assert.equal(busy!.value.n, 2, "the server's write is kept");
      assert.equal(keyring.decrypt('dialect-secret', busy!.value.blob, 'busy'), 'second');
      assert.equal(Keyring.kidOf(busy!.value.blob), keyring.currentKid);
    });

    it('otpd secrets rotate reads the secrets from files and prints its report', async () => {
      const secretFile = join(dir, 'secret');
      const previousFile = join(dir, 'previous');
      writeFileSync(secretFile, NEW + '\n', { mode: 0o600 });
      writeFileSync(previousFile, OLD + '\n', { mode: 0o600 });
      const result = (await runCli(['secrets', 'rotate', '--json'], { ...env, OTPD_SECRET_FILE: secretFile, OTPD_SECRET_PREVIOUS_FILE: previousFile }));
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as { currentKid: string; namespaces: { namespace: string; rewrapped: number }[] };
      assert.equal(report.currentKid, new Keyring(NEW).currentKid);
      assert.ok(report.namespaces.every((ns) => ns.rewrapped === 0));
      assert.ok(!result.stdout.includes(NEW) && !result.stderr.includes(NEW), 'the secret is never printed');
      const webhook = (await runCli(['secrets', 'webhook', 'rotating', '--json'], { ...env, OTPD_SECRET_FILE: secretFile }));
      assert.equal(webhook.code, 0, webhook.stderr);
      assert.equal(JSON.parse(webhook.stdout).secret, webhookSecret);
    });
  });
}

describe('secrets from files (OTPD_SECRET_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-secret-file-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and trims the file; refuses both forms at once, a missing or empty file, without showing the secret', async () => {
    const file = join(dir, 'secret');
    writeFileSync(file, `  ${NEW}\n`);
    const config = loadConfig({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET_FILE: file });
    assert.equal(config.secret, NEW);
    assert.equal(config.secretSource, 'secret-file');
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadConfig({ OTPD_DATABASE: join(dir, 'otpd.db'), ...env });
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
      return [];
    };
    assert.match(problems({ OTPD_SECRET: OLD, OTPD_SECRET_FILE: file }).join('\n'), /OTPD_SECRET_FILE: set either OTPD_SECRET or OTPD_SECRET_FILE/);
    assert.match(problems({ OTPD_SECRET_FILE: join(dir, 'missing') }).join('\n'), /OTPD_SECRET_FILE: cannot read .*missing.* \(ENOENT\)/);
    writeFileSync(join(dir, 'empty'), '\n');
    assert.match(problems({ OTPD_SECRET_FILE: join(dir, 'empty') }).join('\n'), /OTPD_SECRET_FILE: .* is empty/);
    writeFileSync(join(dir, 'short'), 'too-short');
    const short = problems({ OTPD_SECRET_FILE: join(dir, 'short') }).join('\n');
    assert.match(short, /at least 32 characters/);
    assert.ok(!short.includes('too-short'), 'the secret is never in an error');
    assert.match(problems({ OTPD_SECRET: NEW, OTPD_SECRET_PREVIOUS_FILE: join(dir, 'missing') }).join('\n'), /OTPD_SECRET_PREVIOUS_FILE: cannot read/);
  });

  it('validates the webhook retry schedule and timeout', async () => {
    const base = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: NEW };
    assert.deepEqual(loadConfig({ ...base, OTPD_WEBHOOK_RETRY_SCHEDULE: '100ms, 5s,2m,1h' }).webhookRetryScheduleMs, [100, 5_000, 120_000, 3_600_000]);
    assert.equal(loadConfig(base).webhookRetryScheduleMs.length, 7);
    assert.throws(() => loadConfig({ ...base, OTPD_WEBHOOK_RETRY_SCHEDULE: '5 minutes' }), /OTPD_WEBHOOK_RETRY_SCHEDULE: must be/);
    assert.throws(() => loadConfig({ ...base, OTPD_WEBHOOK_RETRY_SCHEDULE: '25h' }), /OTPD_WEBHOOK_RETRY_SCHEDULE/);
    assert.throws(() => loadConfig({ ...base, OTPD_WEBHOOK_TIMEOUT: '0' }), /OTPD_WEBHOOK_TIMEOUT: must be an integer from 1 to 60/);
  });
});
