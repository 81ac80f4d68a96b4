import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { buildApp } from '../../src/http/app.js';
import { createLogger } from '../../src/logger.js';
import { openStoreFor } from '../../src/server.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { Store } from '../../src/store/store.js';
import { TEST_SECRET, type OutboxMessage } from '../helper.js';
import { deleteKeysWithPrefix, inspectionClient } from './redis-keys.js';

/**
 * A real otpd for the seed-002 and hosted-page tests: real HTTP on loopback, a real SQLite file or the
 * shared Redis, the dev outbox for reading codes, and a clock that runs in real time but can be moved
 * forward, so expiry is tested without sleeping. Built like `startServer`, with the clock passed in.
 */
export interface Backend {
  name: 'sqlite' | 'redis';
  env(): Record<string, string>;
}

const REDIS_URL = 'redis://127.0.0.1:6379';

export const BACKENDS: Backend[] = [
  { name: 'sqlite', env: () => ({}) },
  { name: 'redis', env: () => ({ OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: `otpd-test-002-${process.pid}-${randomBytes(4).toString('hex')}:` }) },
];

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

export interface CallOptions {
  /** multipart/form-data, as the Postman collection sends. */
  form?: Record<string, string>;
  urlencoded?: Record<string, string>;
  json?: unknown;
  headers?: Record<string, string>;
  /** X-API-Key value; null sends none. Defaults to the default app's key. */
  key?: string | null;
}

export interface Otp002Server {
  url: string;
  apiKey: string;
  services: Services;
  store: Store;
  app: FastifyInstance;
  /** Moves the server's clock forward. */
  advance(ms: number): void;
  now(): number;
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  messages(): OutboxMessage[];
  /** The code of the `nth` (1-based) message sent to `to` (normalised E.164), waiting up to 5 s for it. */
  codeFor(to: string, nth?: number): Promise<string>;
  /** The otpd verification id behind the `nth` message to `to`. */
  verificationIdFor(to: string, nth?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startOtp002Server(backend: Backend, env: Record<string, string> = {}): Promise<Otp002Server> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-002-'));
  const apiKey = `otpd_test_${randomBytes(16).toString('hex')}`;
  const outboxFile = join(dir, 'outbox.jsonl');
  const backendEnv = backend.env();
  const config = loadConfig({
    OTPD_DATABASE: join(dir, 'otpd.db'),
    OTPD_PORT: '0',
    OTPD_SECRET: TEST_SECRET,
    OTPD_API_KEY: apiKey,
    OTPD_DEV_OUTBOX: outboxFile,
    OTPD_LOG_LEVEL: 'silent',
    ...backendEnv,
    ...env,
  });
  let offset = 0;
  const now = () => Date.now() + offset;
  const logger = createLogger('silent');
  const store = await openStoreFor(config);
  const services = createServices({ config, store, keyring: keyringFrom(config), logger, clock: now });
  await services.apps.ensureDefaultApp(apiKey);
  let url = '';
  const app = await buildApp({ services, logger, trustProxy: false, publicUrl: () => url });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  const messages = (): OutboxMessage[] =>
    existsSync(outboxFile)
      ? readFileSync(outboxFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as OutboxMessage)
      : [];

  async function message(to: string, nth: number): Promise<OutboxMessage> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const found = messages().filter((m) => m.to === to);
      if (found.length >= nth) return found[nth - 1]!;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no message #${nth} to ${to} within 5 s`);
  }

  return {
    url,
    apiKey,
    services,
    store,
    app,
    advance(ms) {
      offset += ms;
    },
    now,
    messages,
    async codeFor(to, nth = 1) {
      return (await message(to, nth)).code;
    },
    async verificationIdFor(to, nth = 1) {
      return (await message(to, nth)).verificationId;
    },
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.key === undefined ? apiKey : options.key;
      if (key !== null) headers['x-api-key'] = key;
      let body: RequestInit['body'];
      if (options.form) {
        const form = new FormData();
        for (const [name, value] of Object.entries(options.form)) form.append(name, value);
        body = form;
      } else if (options.urlencoded) {
        body = new URLSearchParams(options.urlencoded);
      } else if (options.json !== undefined) {
        body = JSON.stringify(options.json);
        headers['content-type'] = 'application/json';
      }
      const response = await fetch(url + path, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, text, body: parsed };
    },
    async close() {
      await app.close();
      await services.drain();
      await store.close();
      const prefix = backendEnv.OTPD_REDIS_PREFIX;
      if (prefix) {
        const client = inspectionClient(REDIS_URL);
        try {
          await deleteKeysWithPrefix(client, prefix);
        } finally {
          client.disconnect();
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The seed-002 Postman collection (the otp gateway API's own, as published), kept in test/fixtures so a
 * clean clone on any machine runs it; `shared/seeds/002_*.txt` is the same file.
 */
export function seed002(): { text: string; json: any } {
  const text = readFileSync(new URL('../fixtures/seed-002-otp-gateway.postman_collection.json', import.meta.url), 'utf8');
  return { text, json: JSON.parse(text) };
}
