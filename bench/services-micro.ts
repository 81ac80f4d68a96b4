/**
 * Server CPU per use case without HTTP: runs verifications through the services on a fresh SQLite file (or
 * Redis with `redis`), 50 at a time like requests of one event-loop turn, and prints CPU µs per operation
 * (process.cpuUsage, the outbox's delivery and the audit batches included). For profiling the service
 * layer: `node --import tsx --cpu-prof bench/services-micro.ts [create|check|all] [N] [sqlite|redis]`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics.js';
import { openStoreFor } from '../src/server.js';
import { createServices, keyringFrom } from '../src/services/index.js';
import { deleteRedisPrefix, inBatches, REDIS_URL } from './lib/otpd.js';

const [what = 'all', countText = '20000', storeKind = 'sqlite'] = process.argv.slice(2);
const count = Number(countText);
const dir = mkdtempSync(join(tmpdir(), 'otpd-micro-'));
const env: NodeJS.ProcessEnv = { OTPD_SECRET: randomBytes(32).toString('base64url'), OTPD_DATABASE: join(dir, 'otpd.db') };
if (storeKind === 'redis') Object.assign(env, { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: `otpd-micro-${randomBytes(4).toString('hex')}:` });
const redisPrefix = env.OTPD_REDIS_PREFIX;
const config = loadConfig(env);
const store = await openStoreFor(config);
const services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent'), metrics: new Metrics({ defaultMetrics: false }) });
const { app } = await services.apps.create('micro', { deliveryProvider: 'noop' });
const context = { keyId: 'micro' };
/** Operations started together, like the requests of one event-loop turn. */
const TURN = 50;
let next = 0;
const destination = (): string => `+1555${String(next++).padStart(7, '0')}`;


async function settle(): Promise<void> {
  await services.drain();
  await services.audit.flush();
}

async function measure(name: string, n: number, one: () => Promise<unknown>): Promise<void> {
  const before = process.cpuUsage();
  const started = performance.now();
  await inBatches(n, one, TURN);
  await settle();
  const used = process.cpuUsage(before);
  console.log(`${name.padEnd(12)} ${((used.user + used.system) / n).toFixed(1).padStart(7)} µs CPU/op  (user ${(used.user / n).toFixed(1)}, system ${(used.system / n).toFixed(1)}), ${Math.round(n / ((performance.now() - started) / 1000))} op/s`);
}

// Warm-up: JIT and the database's first pages.
await inBatches(2000, () => services.verifications.create(app, { to: destination() }, context), TURN);
await settle();
if (what === 'create' || what === 'all') await measure('create', count, () => services.verifications.create(app, { to: destination() }, context));
if (what === 'check' || what === 'all') {
  const pool = await inBatches(count, async () => services.verifications.createRevealingCode(app, { to: destination(), maxAttempts: 20 }, context), TURN);
  await settle();
  let i = 0;
  await measure('check wrong', count, () => { const p = pool[i++]!; return services.verifications.check(app, p.verification.id, p.code === '000000' ? '111111' : '000000', context); });
  i = 0;
  await measure('check right', count, () => { const p = pool[i++]!; return services.verifications.check(app, p.verification.id, p.code, context); });
}
await services.background.stop();
await store.close();
rmSync(dir, { recursive: true, force: true });
// The Redis may be shared: remove this run's keys, and only those.
if (redisPrefix !== undefined) await deleteRedisPrefix(redisPrefix);
