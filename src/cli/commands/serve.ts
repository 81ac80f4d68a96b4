import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { createLogger } from '../../logger.js';
import { serveClusterMetrics } from '../../metrics.js';
import { openStoreFor, startServer } from '../../server.js';
import { createServices, keyringFrom } from '../../services/index.js';

function parseWorkers(text: string): number {
  if (text === 'auto') return availableParallelism();
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 64) throw new Error(`--workers: must be an integer from 1 to 64 or "auto", got "${text}"`);
  return Number(text);
}

/**
 * Runs until SIGTERM/SIGINT, then stops accepting, finishes in-flight work and closes the store. A signal
 * repeated during the shutdown (a supervisor or `docker stop` that signals again, SIGINT and SIGTERM
 * together under `--workers`) does not cut it short; only a second Ctrl-C (SIGINT) exits at once, which
 * loses nothing acknowledged: every answered write was committed first.
 */
async function serveOne(options: { print: boolean; ensureDefaultApp: boolean }): Promise<void> {
  const config = loadConfig();
  // Signals are handled from the very start, so a stop request during start-up is still graceful.
  const received: string[] = [];
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const stop = () => {
    server!.logger.info({ signal: received[0] }, 'shutting down');
    server!.close().then(
      () => process.exit(0),
      (error) => {
        server!.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: string) => {
    received.push(signal);
    if (received.length === 1) {
      if (server) stop();
      return;
    }
    if (signal === 'SIGINT' && received.filter((s) => s === 'SIGINT').length > 1) {
      server?.logger.warn('second SIGINT: exiting without waiting for in-flight work');
      process.exit(130);
    }
    server?.logger.info({ signal }, 'already shutting down');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  server = await startServer(config, { print: options.print ? undefined : null, ensureDefaultApp: options.ensureDefaultApp });
  if (received.length > 0) stop();
}

/**
 * `--workers N`: a node:cluster primary that prepares the store once (default app, migrations), then forks
 * N workers sharing the listening port. Workers share all state through the store, so any worker may
 * serve any request; a worker that dies is replaced.
 */
async function servePrimary(workers: number): Promise<void> {
  const config = loadConfig();
  const store = await openStoreFor(config);
  const services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent') });
  const { generatedKey } = await services.apps.ensureDefaultApp(config.apiKey);
  await store.close();
  if (generatedKey) {
    process.stdout.write(`API key of the "default" app (shown once; store it now): ${generatedKey}\n`);
  }
  let stopping = false;
  const fork = (index: number) => cluster.fork({ OTPD_WORKER_INDEX: String(index) });
  // GET /metrics on any worker answers with the sum over all workers (docs/observability.md).
  serveClusterMetrics();
  for (let i = 0; i < workers; i++) fork(i);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    process.stderr.write(`otpd: worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`);
    fork(0);
  });
  // Idempotent: a repeated signal reaches the workers again as SIGTERM, which they ignore while stopping.
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Each worker reloads OTPD_CONFIG on SIGHUP; the primary only passes the signal on.
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API (SQLite by default; OTPD_REDIS_URL for Redis)')
    .option('--workers <n>', 'worker processes sharing the port (a number, or "auto" for one per core)', '1')
    .action(async (options: { workers: string }) => {
      const workers = parseWorkers(options.workers);
      if (cluster.isWorker) return serveOne({ print: process.env.OTPD_WORKER_INDEX === '0', ensureDefaultApp: false });
      if (workers === 1) return serveOne({ print: true, ensureDefaultApp: true });
      return servePrimary(workers);
    });
}
