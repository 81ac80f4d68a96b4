import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { baseServerArgs, exitedError, freePort, pingPort, redisCli, spawnRedisServer, stopProcess, waitFor } from './redis-process.js';

export interface RedisCluster {
  /** One redis:// URL per master. */
  urls: string[];
  /** Kills every node and removes the cluster's directory. */
  stop(): Promise<void>;
}

const MASTERS = 3;
const NODE_START_TIMEOUT_MS = 10_000;
const CREATE_TIMEOUT_MS = 30_000;
const STATE_OK_TIMEOUT_MS = 20_000;

/**
 * A throwaway 3-master Redis Cluster on free loopback ports (no replicas, no persistence), built with
 * `redis-cli --cluster create`. Resolves once every node reports cluster_state:ok. Every wait is bounded,
 * and on any failure every node started so far is killed before the error is thrown.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  // Another process may take a free port before a node binds it; a second try with fresh ports settles that.
  try {
    return await startOnce();
  } catch {
    return await startOnce();
  }
}

async function startOnce(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];

  async function stop(): Promise<void> {
    await Promise.all(children.map((child) => stopProcess(child)));
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    for (let i = 0; i < MASTERS; i++) ports.push(await freePort({ withBus: true, exclude: ports }));
    for (const port of ports) {
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const args = [
        ...baseServerArgs(port, nodeDir),
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '2000',
      ];
      const server = spawnRedisServer(args);
      children.push(server.child);
      await waitFor(`cluster node on port ${port}`, () => pingPort(port), NODE_START_TIMEOUT_MS, 100, exitedError(server));
    }

    await redisCli(['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], CREATE_TIMEOUT_MS);

    for (const port of ports) {
      await waitFor(`cluster_state:ok on port ${port}`, async () => {
        const info = await redisCli(['-h', '127.0.0.1', '-p', String(port), 'CLUSTER', 'INFO'], 1000);
        return info.includes('cluster_state:ok');
      }, STATE_OK_TIMEOUT_MS, 200);
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return { urls: ports.map((port) => `redis://127.0.0.1:${port}`), stop };
}
