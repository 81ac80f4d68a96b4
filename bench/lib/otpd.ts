/**
 * An otpd under test: a fresh SQLite file or Redis prefix, the `bench` app, `otpd serve` processes from
 * dist/ (what a deployment runs), and pools of verifications and factors made beforehand through the same
 * services in this process (same store, same secret), each with the code a person would have received.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { base32Decode, totp } from '../../src/core/otp.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics.js';
import { openStoreFor } from '../../src/server.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { AppRecord, Store } from '../../src/store/store.js';
import { freePort, startProcess, type ServerProcess } from './processes.js';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface OtpdTarget {
  /** `sqlite`, `redis`, `redis-2w`: the row label's suffix. */
  label: string;
  store: 'sqlite' | 'redis';
  workers: number;
}

export interface PooledCode {
  /** Verification id (native) or client id (seed 002). */
  id: string;
  code: string;
  to: string;
}

export interface PooledFactor {
  id: string;
  secret: Uint8Array;
}

const TOTP = { algorithm: 'SHA1', digits: 6, period: 30 } as const;

/** How many pool items are made concurrently during setup. */
const SETUP_CONCURRENCY = 200;

/**
 * A prefix and seven digits: distinct destinations, so per-destination limits and cooldowns never refuse.
 * Counting up, every per-destination B-tree of the SQLite store (the pending index, the counters, the
 * cooldowns) appends; `scattered` spreads them over the range as real traffic does, so each create writes a
 * page of each of its own (7368787 is prime to 9999991, a prime: no number repeats within 9,999,991).
 */
export class Destinations {
  private next = 0;
  constructor(
    private readonly prefix: string,
    private readonly scattered = false,
  ) {}
  take(): string {
    const n = this.next++;
    return `${this.prefix}${String(this.scattered ? (n * 7368787) % 9999991 : n).padStart(7, '0')}`;
  }
}

/** `count` calls of `make`, `concurrency` at a time (a batch waits for the one before it). */
export async function inBatches<T>(count: number, make: (index: number) => Promise<T>, concurrency = SETUP_CONCURRENCY): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const size = Math.min(concurrency, count - start);
    out.push(...(await Promise.all(Array.from({ length: size }, (_, i) => make(start + i)))));
  }
  return out;
}

export class OtpdUnderTest {
  server: ServerProcess | undefined;
  apiKey = '';
  private app!: AppRecord;
  private services!: Services;
  private store!: Store;
  readonly destinations = new Destinations('+1555');
  readonly scatteredDestinations = new Destinations('+1556', true);
  private readonly dir: string;
  private readonly prefix: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly target: OtpdTarget,
    private readonly root: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `otpd-bench-${target.label}-`));
    this.prefix = `otpd-bench-${randomBytes(4).toString('hex')}:`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      OTPD_HOST: '127.0.0.1',
      OTPD_SECRET: randomBytes(32).toString('base64url'),
      OTPD_DATABASE: join(this.dir, 'otpd.db'),
    };
    if (target.store === 'redis') Object.assign(env, { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: this.prefix });
    this.env = env;
  }

  /** Opens the store in this process and creates the `bench` app (default settings, `noop` provider). */
  async setUp(): Promise<void> {
    const config = loadConfig(this.env);
    this.store = await openStoreFor(config);
    this.services = createServices({ config, store: this.store, keyring: keyringFrom(config), logger: createLogger('silent'), metrics: new Metrics() });
    const created = await this.services.apps.create('bench', { deliveryProvider: 'noop' });
    this.app = created.app;
    this.apiKey = created.apiKey;
  }

  /** `nodeArgs` and `env`: for profiling (`--import bench/lib/profile-window.mjs` and its BENCH_PROFILE_DIR). */
  async start(nodeArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
    const port = await freePort();
    const args = [...nodeArgs, 'dist/cli/index.js', 'serve', ...(this.target.workers > 1 ? ['--workers', String(this.target.workers)] : [])];
    this.server = await startProcess({
      name: `otpd (${this.target.label})`,
      args,
      env: { ...this.env, ...env, OTPD_PORT: String(port) },
      url: `http://127.0.0.1:${port}`,
      readyPath: '/healthz',
      cwd: this.root,
    });
    return this.server;
  }

  /** Pending verifications with their codes (the code as createRevealingCode hands it to a dialect). */
  async verificationPool(count: number, input: { maxAttempts?: number } = {}): Promise<PooledCode[]> {
    const pool = await inBatches(count, async () => {
      const to = this.destinations.take();
      const { verification, code } = await this.services.verifications.createRevealingCode(this.app, { to, ...input }, { keyId: 'bench-setup' });
      return { id: verification.id, code, to };
    });
    await this.settle();
    return pool;
  }

  /** Seed-002 verifications under client ids, with their codes. */
  async namedPool(count: number): Promise<PooledCode[]> {
    const pool = await inBatches(count, async () => {
      const to = this.destinations.take();
      const id = `pool-${randomBytes(9).toString('base64url')}`;
      const result = await this.services.namedVerifications.put(
        this.app,
        id,
        { to, destination: to, channel: 'sms', provider: 'sms', channelDescription: '', addressDescription: '', extra: {} },
        { revealCode: true },
        {},
      );
      return { id, code: result.code!, to };
    });
    await this.settle();
    return pool;
  }

  /** TOTP factors (SHA1, 6 digits, 30 s), verified once with the previous step's code as an enrolment would. */
  async factorPool(count: number): Promise<PooledFactor[]> {
    const pool = await inBatches(count, async (index) => {
      const enrolment = await this.services.factors.enrol(this.app, { type: 'totp', account: `bench-${index}` });
      const secret = base32Decode(enrolment.secret)!;
      // The previous step's code, so every code of the benchmark (this step's or later) is a fresh one. A
      // step boundary between computing it and the check can turn it stale: then once more (one failure is free).
      let check = await this.services.factors.verify(this.app, enrolment.factor.id, totp(secret, Date.now() - 30_000, TOTP), {});
      if (!check.valid) check = await this.services.factors.verify(this.app, enrolment.factor.id, totp(secret, Date.now() - 30_000, TOTP), {});
      if (!check.valid) throw new Error(`factor ${enrolment.factor.id} did not verify during setup`);
      return { id: enrolment.factor.id, secret };
    });
    await this.settle();
    return pool;
  }

  /** Waits until what setup queued (messages, audit entries) is written, so it does not run during a measurement. */
  private async settle(): Promise<void> {
    await this.services.drain();
    await this.services.audit.flush();
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  /** Stops everything and removes the data directory or the Redis keys. */
  async close(): Promise<void> {
    await this.stop();
    await this.services?.delivery.close();
    await this.services?.audit.flush();
    await this.store?.close();
    rmSync(this.dir, { recursive: true, force: true });
    if (this.target.store === 'redis') await deleteRedisPrefix(this.prefix);
  }
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0' && ++rounds < 1_000_000);
  } finally {
    client.disconnect();
  }
}

/** The TOTP code of a factor now (what its authenticator app shows). */
export function totpNow(factor: PooledFactor): string {
  return totp(factor.secret, Date.now(), TOTP);
}
