import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { baseServerArgs, freePort, pingPort, spawnRedisServer, stopProcess, waitFor } from './redis-process.js';

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

/**
 * A standalone redis-server of its own on a free loopback port, for tests that stop and restart Redis.
 * Every wait is bounded; the process is killed when the test process exits even if `stop` is never called.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  // Nothing is persisted (no RDB, no AOF), so the directory only needs to exist.
  const dir = tmpdir();
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const server = spawnRedisServer(baseServerArgs(port, dir));
    child = server.child;
    try {
      await waitFor(`redis-server on port ${port}`, async () => {
        if (server.child.exitCode !== null) throw new Error(`redis-server exited: ${server.output()}`);
        return pingPort(port);
      }, START_TIMEOUT_MS);
    } catch (error) {
      await stopProcess(server.child);
      throw error;
    }
  }

  async function stop(): Promise<void> {
    if (child) await stopProcess(child);
  }

  await start();
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
