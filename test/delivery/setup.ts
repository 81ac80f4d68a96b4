import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helper.js';
import { deleteKeysWithPrefix, inspectionClient } from '../support/redis-keys.js';

/** The stores every delivery test runs on (decisions 20): SQLite, and the Redis CI starts on 6379. */
export const BACKENDS = ['sqlite', 'redis'] as const;
export type Backend = (typeof BACKENDS)[number];

const REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Starts a real otpd with `yaml` as its config file (OTPD_CONFIG), on SQLite or Redis (its own key prefix,
 * deleted on close). `env` holds what the file references as `${NAME}`.
 */
export async function startWithConfig(yaml: string, backend: Backend, env: Record<string, string> = {}): Promise<TestServer & { configPath: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-config-'));
  const configPath = join(dir, 'otpd.yaml');
  writeFileSync(configPath, yaml);
  const prefix = `otpd-test-${randomBytes(6).toString('hex')}:`;
  const backendEnv: Record<string, string> = backend === 'redis' ? { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: prefix } : {};
  const server = await startTestServer({ OTPD_CONFIG: configPath, ...backendEnv, ...env });
  const close = server.close.bind(server);
  return Object.assign(server, {
    configPath,
    async close() {
      await close();
      rmSync(dir, { recursive: true, force: true });
      if (backend === 'redis') {
        const client = inspectionClient(REDIS_URL);
        try {
          await deleteKeysWithPrefix(client, prefix);
        } finally {
          client.disconnect();
        }
      }
    },
  });
}

/** A phone number no other test uses (destination limits apply per number). */
export function phone(): string {
  return `+1555${(100_0000 + Math.floor(Math.random() * 899_9999)).toString()}`;
}

/** Fast outbox settings for tests: quick polls and retries. */
export const FAST_OUTBOX = `outbox:
  pollIntervalMs: 50
  leaseSeconds: 10
  maxTries: 3
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.2
`;
