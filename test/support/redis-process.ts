import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Shared plumbing for tests that run their own redis-server: free loopback ports, bounded waits, and a
 * process registry that kills every spawned server when the test process exits, whatever way it exits.
 */

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A free loopback port. With `withBus`, port + 10000 is free too (Redis Cluster's bus port), so ports are
 * drawn from 20000–39999 rather than from the kernel's ephemeral range, which could push the bus past 65535.
 */
export async function freePort(options: { withBus?: boolean; exclude?: number[] } = {}): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (options.exclude?.some((p) => p === port || p + 10_000 === port || p === port + 10_000)) continue;
    if (!(await portIsFree(port))) continue;
    if (options.withBus && !(await portIsFree(port + 10_000))) continue;
    return port;
  }
  throw new Error('no free loopback port found');
}

/** Runs redis-cli with a deadline; resolves with stdout. */
export function redisCli(args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message} ${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

/**
 * Polls `check` until it returns true, at most `timeoutMs`; the last failure is in the error. `fatal` ends
 * the wait at once when it reports something that no amount of waiting will fix (a process that exited).
 */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100, fatal?: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const stop = fatal?.();
    if (stop) throw stop;
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Starts redis-server with the given arguments; its output is kept for error messages. */
export function spawnRedisServer(args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('error', (error) => keep(Buffer.from(`spawn failed: ${error.message}\n`)));
  return { child, output: () => output };
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`; resolves once it has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The arguments every test server shares: loopback only, no persistence, data directory given. */
export function baseServerArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'];
}

/** For `waitFor`'s `fatal`: an error once the server process has exited, with its last output. */
export function exitedError(server: { child: ChildProcess; output: () => string }): () => Error | undefined {
  return () => (server.child.exitCode !== null || server.child.signalCode !== null ? new Error(`redis-server exited: ${server.output()}`) : undefined);
}

export async function pingPort(port: number): Promise<boolean> {
  return (await redisCli(['-h', '127.0.0.1', '-p', String(port), 'PING'], 1000)).trim() === 'PONG';
}
