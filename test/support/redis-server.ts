import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { baseServerArgs, exitedError, freePort, pingPort, spawnRedisServer, stopProcess, waitFor } from './redis-process.js';

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, SIGKILL after 3 s); the port stays reserved for `restart`. */
  stop(): Promise<void>;
  /** Starts a fresh server on the same port (empty: nothing is persisted) and waits until it answers. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server keeps its connections open but stops answering, like a network partition. */
  pause(): void;
  resume(): void;
}

const START_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 3;

/**
 * A standalone redis-server of its own on a free loopback port, for tests that stop and restart Redis.
 * Every wait is bounded; the process is killed when the test process exits even if `stop` is never called.
 */
export async function startRedisServer(): Promise<RedisServer> {
  // Nothing is persisted (no RDB, no AOF), so the directory only needs to exist.
  const dir = tmpdir();
  let port = 0;
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const server = spawnRedisServer(baseServerArgs(port, dir));
    child = server.child;
    try {
      await waitFor(`redis-server on port ${port}`, () => pingPort(port), START_TIMEOUT_MS, 100, exitedError(server));
    } catch (error) {
      await stopProcess(server.child);
      throw error;
    }
  }

  async function stop(): Promise<void> {
    if (child) await stopProcess(child);
  }

  // Another process may take the free port before redis-server binds it; a few fresh ports settle that.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (error) {
      if (attempt === START_ATTEMPTS) throw error;
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
  };
}
