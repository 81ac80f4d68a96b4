import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { deleteKeysWithPrefix } from './support/redis-keys.js';

/** A server's dev-outbox line (what the person would receive). */
export interface OutboxMessage {
  verificationId: string;
  channel: string;
  to: string;
  code: string;
  message: string;
  at: string;
}

export interface TestServer {
  url: string;
  apiKey: string;
  dir: string;
  outboxFile: string;
  server: RunningServer;
  /** JSON request to the server with the default app's key (pass `apiKey: null` for none). */
  request(method: string, path: string, body?: unknown, options?: { apiKey?: string | null; headers?: Record<string, string> }): Promise<TestResponse>;
  /** Every message in the dev outbox so far. */
  messages(): OutboxMessage[];
  /** Waits (bounded) for the `nth` (1-based) message of a verification and returns its code. */
  codeFor(verificationId: string, nth?: number): Promise<string>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** Open test servers per Redis key prefix. */
const openPrefixes = new Map<string, number>();

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/**
 * Starts a real otpd (real SQLite file, or Redis when `env.OTPD_REDIS_URL` is given) on a free loopback
 * port, with a dev outbox so tests read codes as a person would read their messages.
 */
export async function startTestServer(env: Record<string, string> = {}, options: { logStream?: NodeJS.WritableStream } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-test-'));
  const apiKey = `otpd_test_${randomBytes(16).toString('hex')}`;
  const outboxFile = join(dir, 'outbox.jsonl');
  const config = loadConfig({
    OTPD_DATABASE: join(dir, 'otpd.db'),
    OTPD_PORT: '0',
    OTPD_SECRET: TEST_SECRET,
    OTPD_API_KEY: apiKey,
    OTPD_DEV_OUTBOX: outboxFile,
    OTPD_LOG_LEVEL: 'silent',
    ...env,
  });
  if (config.redis) openPrefixes.set(config.redis.prefix, (openPrefixes.get(config.redis.prefix) ?? 0) + 1);
  const server = await startServer(config, options.logStream ? { print: null, logStream: options.logStream } : { print: null });
  const url = server.url;

  const messages = (): OutboxMessage[] =>
    existsSync(outboxFile)
      ? readFileSync(outboxFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as OutboxMessage)
      : [];

  return {
    url,
    apiKey,
    dir,
    outboxFile,
    server,
    messages,
    async request(method, path, body, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.apiKey === undefined ? apiKey : options.apiKey;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined;
      if (body !== undefined) {
        payload = typeof body === 'string' ? body : JSON.stringify(body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(url + path, { method, headers, body: payload, signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    async codeFor(verificationId, nth = 1) {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const found = messages().filter((m) => m.verificationId === verificationId);
        if (found.length >= nth) return found[nth - 1]!.code;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`no message #${nth} for ${verificationId} within 5 s`);
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
      // A test's Redis keys go with the last server using its prefix, so a long-lived local Redis does not
      // collect test data while servers that share a prefix keep theirs.
      const prefix = config.redis?.prefix;
      const users = prefix === undefined ? 0 : (openPrefixes.get(prefix) ?? 1) - 1;
      if (prefix !== undefined) openPrefixes.set(prefix, users);
      if (config.redis && users === 0) {
        const client = new Redis(config.redis.urls[0]!, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await client.connect();
          await deleteKeysWithPrefix(client, config.redis.prefix);
        } catch {
          /* the Redis of an outage test may be gone already */
        } finally {
          client.disconnect();
        }
      }
    },
  };
}
