import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { applyFileApps, reloadOnHangup } from './config-file-apply.js';
import { buildApp } from './http/app.js';
import { createLogger } from './logger.js';
import { createServices, keyringFrom, type Services } from './services/index.js';
import { openStore, type Store } from './store/index.js';

export interface RunningServer {
  url: string;
  publicUrl: string;
  app: FastifyInstance;
  services: Services;
  store: Store;
  logger: Logger;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where the start-up banner goes (stdout by default); `null` prints nothing. */
  print?: ((line: string) => void) | null;
  /** Creates the default app (the primary of a `--workers` group already did). */
  ensureDefaultApp?: boolean;
  /** Where JSON log lines go (stdout by default); tests read them to prove no code is logged. */
  logStream?: NodeJS.WritableStream;
}

const CLEANUP_INTERVAL_MS = 60_000;

export async function openStoreFor(config: Config): Promise<Store> {
  const routingKey = keyringFrom(config).subkey('routing');
  return config.redis
    ? openStore({ backend: 'redis', ...config.redis, routingKey })
    : openStore({ backend: 'sqlite', path: config.database, routingKey });
}

export function describeStore(config: Config): string {
  return config.redis ? `redis ${config.redis.urls.join(',')}${config.redis.cluster ? ' (cluster)' : ''}` : `sqlite ${config.database}`;
}

/** Starts one otpd process: store, services, HTTP app, listener, background cleanup. */
export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const print = options.print === undefined ? (line: string) => process.stdout.write(line + '\n') : options.print;
  const logger = createLogger(config.logLevel, options.logStream);
  const store = await openStoreFor(config);
  const services = createServices({ config, store, keyring: keyringFrom(config), logger });

  let generatedKey: string | undefined;
  if (options.ensureDefaultApp !== false) generatedKey = (await services.apps.ensureDefaultApp(config.apiKey)).generatedKey;
  if (config.file) await applyFileApps(services.apps, config.file, logger);

  // The public URL is only known once the port is bound (OTPD_PORT=0 picks one, decisions 12).
  let publicUrl = config.publicUrl ?? '';
  const app = await buildApp({ services, logger, trustProxy: config.trustProxy, publicUrl: () => publicUrl });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;
  publicUrl = config.publicUrl ?? url;
  // Messages accepted before a crash wait in the outbox: this process sends them too.
  services.delivery.setPublicUrl(publicUrl);
  services.delivery.start();
  const stopReloading = reloadOnHangup(config.file?.path, services, logger);

  const cleanup = setInterval(() => {
    services.verifications.purge(config.retentionMs).catch((error) => logger.warn({ err: error }, 'cleanup failed'));
  }, CLEANUP_INTERVAL_MS);
  cleanup.unref();

  if (print) printBanner(print, { url, config, generatedKey });

  let closing: Promise<void> | undefined;
  return {
    url,
    publicUrl,
    app,
    services,
    store,
    logger,
    close() {
      closing ??= (async () => {
        clearInterval(cleanup);
        stopReloading();
        await app.close();
        await services.delivery.close();
        await store.close();
      })();
      return closing;
    },
  };
}

function printBanner(print: (text: string) => void, { url, config, generatedKey }: { url: string; config: Config; generatedKey: string | undefined }): void {
  const key = generatedKey ?? config.apiKey ?? '$OTPD_API_KEY';
  const lines = [`otpd listening on ${url} (store: ${describeStore(config)})`];
  if (generatedKey) {
    lines.push('', 'API key of the "default" app (shown once; store it now, or create another with `otpd keys create default`):', `  ${generatedKey}`);
  }
  lines.push(
    '',
    'Send a code:',
    `  curl -s ${url}/v1/verifications -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '{"to":"+15555550100"}'`,
    'Check it (the id from the answer, the code from the message):',
    `  curl -s ${url}/v1/verifications/VERIFICATION_ID/check -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '{"code":"123456"}'`,
    config.devOutbox ? `Messages are written to ${config.devOutbox}.` : config.production ? 'Messages go to the configured providers.' : 'Messages (with their codes) are printed on stderr by the development log provider.',
  );
  // One write, so the banner arrives whole even when stdout is a pipe.
  print(lines.join('\n'));
}
