import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Socket } from 'node:net';
import { OtpdError } from '../../errors.js';
import type { ScriptDefinition } from './scripts.js';

/**
 * One connection (standalone or Cluster) configured to fail fast: a store call made while Redis is away
 * rejects within about a second with STORE_UNAVAILABLE instead of queueing, so requests answer 503 rather
 * than pile up; meanwhile the client reconnects forever with a capped backoff, and calls succeed again on
 * their own once Redis is back. Scripts are registered with `defineCommand`, which sends EVALSHA and falls
 * back to EVAL on NOSCRIPT (and sends EVAL first on every new socket), so a restarted Redis with an empty
 * script cache needs nothing from us.
 */

export interface ConnectionOptions {
  urls: string[];
  cluster: boolean;
  /** Per-command deadline. */
  commandTimeoutMs?: number;
  /** How long opening waits for the first ready connection. */
  readyTimeoutMs?: number;
}

/** The commands the store uses outside scripts (reads and single-command writes). */
export interface Commands {
  hgetall(key: string): Promise<Record<string, string>>;
  hget(key: string, field: string): Promise<string | null>;
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  hvals(key: string): Promise<string[]>;
  smembers(key: string): Promise<string[]>;
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<'OK' | null>;
  del(...keys: string[]): Promise<number>;
  hdel(key: string, ...fields: string[]): Promise<number>;
  pttl(key: string): Promise<number>;
  xrevrange(key: string, end: string, start: string, count: 'COUNT', n: number): Promise<[string, string[]][]>;
  xdel(key: string, ...ids: string[]): Promise<number>;
  xtrim(key: string, minid: 'MINID', threshold: string): Promise<number>;
}

/** One page of a SCAN over every master. */
export interface ScanPage {
  keys: string[];
  /** undefined once every node has been scanned to its end. */
  nextCursor: string | undefined;
}

type NetStream = Pick<Socket, 'cork' | 'uncork' | 'writable'>;
type ScriptFunction = (...keysAndArgs: string[]) => Promise<unknown>;

const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_READY_TIMEOUT_MS = 5000;
const MAX_RECONNECT_DELAY_MS = 1000;
const MINIMUM_MAJOR_VERSION = 7;

/** 100, 200, 400, 800 ms, then every second, forever: Redis coming back is picked up within a second. */
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 5), MAX_RECONNECT_DELAY_MS);
}

interface ParsedUrl {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls: boolean;
}

function parseRedisUrl(raw: string): ParsedUrl {
  const url = new URL(raw);
  const parsed: ParsedUrl = { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: url.port ? Number(url.port) : 6379, tls: url.protocol === 'rediss:' };
  if (url.username) parsed.username = decodeURIComponent(url.username);
  if (url.password) parsed.password = decodeURIComponent(url.password);
  const db = url.pathname.replace(/^\//, '');
  if (db) parsed.db = Number(db);
  return parsed;
}

/** Rejections Redis gives while it cannot serve (starting, failing over, out of memory), as opposed to bugs. */
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|NOREPLICAS|OOM)\b/;

/**
 * STORE_UNAVAILABLE for every failure to reach Redis (refused, closed, timed out, retries exhausted, cluster
 * not ready) and for replies meaning "cannot serve now"; other Redis replies are bugs and stay as they are.
 */
export function toStoreError(error: unknown): unknown {
  if (error instanceof OtpdError) return error;
  if (!(error instanceof Error)) return new OtpdError('STORE_UNAVAILABLE', `Redis is unavailable: ${String(error)}`, { cause: error });
  if (error.name === 'ReplyError' && !UNAVAILABLE_REPLIES.test(error.message)) return error;
  return new OtpdError('STORE_UNAVAILABLE', `Redis is unavailable: ${error.message}`, { cause: error });
}

export class RedisConnection {
  readonly commands: Commands;
  private readonly deadlineMs: number;
  private lastError: Error | undefined;
  /** The sockets corked until the end of this turn of the event loop (coalesceWrites), if any. */
  private corked: NetStream[] | undefined;

  private constructor(
    private readonly client: Redis | Cluster,
    commandTimeoutMs: number,
  ) {
    this.commands = client;
    // ioredis enforces commandTimeout per command; this outer deadline also bounds paths it does not cover
    // (cluster redirections and retries), so no store call can hang.
    this.deadlineMs = commandTimeoutMs * 2 + 500;
    // Without a listener ioredis prints every connection error; each call reports its own failure instead.
    client.on('error', (error: Error) => {
      this.lastError = error;
    });
  }

  static async open(options: ConnectionOptions, scripts: readonly ScriptDefinition[]): Promise<RedisConnection> {
    if (options.urls.length === 0) throw new OtpdError('CONFIG', 'no Redis URL given');
    const commandTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const urls = options.urls.map(parseRedisUrl);
    const first = urls[0]!;
    const common: RedisOptions = {
      commandTimeout,
      connectTimeout: Math.max(commandTimeout, 1000),
      maxRetriesPerRequest: 1,
      ...(first.username === undefined ? {} : { username: first.username }),
      ...(first.password === undefined ? {} : { password: first.password }),
      ...(first.tls ? { tls: {} } : {}),
    };
    const scriptTable = Object.fromEntries(scripts.map((s) => [s.name, { lua: s.lua, numberOfKeys: s.numberOfKeys, readOnly: s.readOnly ?? false }]));

    let client: Redis | Cluster;
    if (options.cluster || urls.length > 1) {
      const nodes: ClusterNode[] = urls.map((u) => ({ host: u.host, port: u.port }));
      client = new Cluster(nodes, {
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        scripts: scriptTable,
        redisOptions: common,
      });
    } else {
      client = new Redis({
        ...common,
        host: first.host,
        port: first.port,
        ...(first.db === undefined ? {} : { db: first.db }),
        enableOfflineQueue: false,
        retryStrategy: reconnectDelay,
        scripts: scriptTable,
      });
    }
    const connection = new RedisConnection(client, commandTimeout);
    await connection.waitReady(options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, options.urls);
    try {
      await connection.requireVersion(MINIMUM_MAJOR_VERSION);
    } catch (error) {
      client.disconnect();
      throw error;
    }
    return connection;
  }

  /** The scripts use Redis 7 shebangs (scripts.ts); an older server is refused at start, not at the first call. */
  private async requireVersion(major: number): Promise<void> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    for (const node of nodes) {
      const info = await this.guard(() => node.info('server'));
      const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      if (!(Number.parseInt(version, 10) >= major)) {
        throw new OtpdError('CONFIG', `otpd needs Redis ${major}.0 or newer, but ${node.options.host ?? 'the server'}:${node.options.port ?? ''} runs ${version}`);
      }
    }
  }

  private waitReady(timeoutMs: number, urls: string[]): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.removeListener('ready', onReady);
        client.disconnect();
        const reason = this.lastError ? `: ${this.lastError.message}` : '';
        reject(new OtpdError('STORE_UNAVAILABLE', `Redis is unavailable: no connection to ${urls.map(redactUrl).join(', ')} within ${timeoutMs} ms${reason}`, { cause: this.lastError }));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', onReady);
    });
  }

  /**
   * Coalesces the commands issued in one turn of the event loop into one socket write. ioredis writes each
   * command to the socket as it is issued, and a write on a TCP socket is a system call that also runs the
   * loopback receive path: about 10 µs of CPU each, the largest single cost of a store call. The sockets
   * stay corked until `setImmediate`, the check phase right after the poll phase that read the requests
   * (and the Redis replies): every request that arrived in one turn, each read in a callback of its own,
   * sends its commands in one `writev` together with the follow-ups of every reply of that turn, and Redis
   * answers them with one write too. Corking only until `process.nextTick` flushed after each callback,
   * so each request's first command still took a write of its own: Redis read 4–5 times more often
   * (INFO `total_reads_processed` per benchmark run). Nothing waits longer than the turn: a command issued
   * while the loop is idle goes out as soon as the poll phase that issued it ends. (ioredis' own
   * `enableAutoPipelining` also waits for `setImmediate`, but builds a pipeline object per batch, which
   * costs more than it saves here.)
   */
  private coalesceWrites(): void {
    if (this.corked !== undefined) return;
    const corked: NetStream[] = [];
    for (const node of this.client instanceof Cluster ? this.client.nodes() : [this.client]) {
      const stream = node.stream as NetStream | undefined;
      if (stream !== undefined && stream.writable) {
        stream.cork();
        corked.push(stream);
      }
    }
    this.corked = corked;
    setImmediate(() => {
      this.corked = undefined;
      for (const stream of corked) stream.uncork();
    });
  }

  /**
   * Runs one Redis operation, mapping failures to STORE_UNAVAILABLE and bounding its duration. One promise and
   * one timer per call (no `Promise.race` over a second promise): this wraps every store call.
   */
  guard<T>(operation: () => Promise<T>): Promise<T> {
    this.coalesceWrites();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new OtpdError('STORE_UNAVAILABLE', `Redis is unavailable: no answer within ${this.deadlineMs} ms`)), this.deadlineMs);
      const fail = (error: unknown): void => {
        clearTimeout(timer);
        reject(toStoreError(error));
      };
      let pending: Promise<T>;
      try {
        pending = operation();
      } catch (error) {
        fail(error);
        return;
      }
      pending.then((value) => {
        clearTimeout(timer);
        resolve(value);
      }, fail);
    });
  }

  /** Runs a registered script: keys first (they route the call in a cluster), then arguments. */
  run(script: ScriptDefinition, keys: string[], args: (string | number)[]): Promise<unknown> {
    if (keys.length !== script.numberOfKeys) throw new Error(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    const call = (this.client as unknown as Record<string, ScriptFunction>)[script.name];
    if (!call) throw new Error(`script ${script.name} is not registered`);
    return this.guard(() => call.call(this.client, ...keys, ...args.map(String)));
  }

  /** Standalone: the one client. Cluster: every master, in a stable order (host:port), for SCAN. */
  private masters(): Redis[] {
    if (!(this.client instanceof Cluster)) return [this.client];
    const name = (node: Redis): string => `${node.options.host ?? ''}:${node.options.port ?? ''}`;
    return this.client.nodes('master').sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  }

  /**
   * SCAN MATCH `pattern` across the store: each master of a cluster holds part of the keyspace, so the
   * cursor is `<master index>:<that master's cursor>`. Stops after about `count` keys, or when a master is
   * done (the caller continues with the cursor). SCAN's guarantee holds per master: a key present for the
   * whole scan is returned at least once, possibly twice. A failover or resharding during a scan can skip
   * or repeat keys of the slots that moved; callers (key rotation, erasure) are idempotent and may be rerun.
   */
  async scan(pattern: string, cursor: string | undefined, count: number): Promise<ScanPage> {
    const masters = this.masters();
    let node = 0;
    let nodeCursor = '0';
    if (cursor !== undefined) {
      const match = /^(\d+):(\d+)$/.exec(cursor);
      if (!match) throw new OtpdError('VALIDATION', 'cursor: is not a cursor this server issued', { errors: [{ field: 'cursor', message: 'is not a cursor this server issued' }] });
      node = Number(match[1]);
      nodeCursor = match[2]!;
    }
    const keys: string[] = [];
    while (node < masters.length) {
      const master = masters[node]!;
      const [next, found] = await this.guard(() => master.scan(nodeCursor, 'MATCH', pattern, 'COUNT', Math.max(count, 1000)));
      keys.push(...found);
      if (next === '0') {
        node++;
        nodeCursor = '0';
        // A finished master is a natural page end; the next call starts the next one.
        return { keys, nextCursor: node < masters.length ? `${node}:0` : undefined };
      }
      nodeCursor = next;
      if (keys.length >= count) return { keys, nextCursor: `${node}:${nodeCursor}` };
    }
    return { keys, nextCursor: undefined };
  }

  /** Every master answers PING (in a cluster, each shard is a part of the store). */
  ping(): Promise<void> {
    return this.guard(async () => {
      const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
      if (nodes.length === 0) throw new OtpdError('STORE_UNAVAILABLE', 'Redis is unavailable: no cluster master is known');
      await Promise.all(nodes.map((node) => node.ping()));
    });
  }

  /** QUIT when connected (replies already owed still arrive), otherwise just drop the reconnect loop. */
  async close(): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') {
      try {
        await this.guard(() => client.quit());
        return;
      } catch {
        // Fall through: whatever the reason, make sure no socket or timer is left behind.
      }
    }
    client.disconnect();
  }
}

function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return raw;
  }
}
