import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { openStoreFor } from '../server.js';
import { createServices, keyringFrom, type Services } from '../services/index.js';

/** Opens the configured store and services for one CLI command, and closes them after. */
export async function withServices<T>(work: (services: Services, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const store = await openStoreFor(config);
  const services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent') });
  try {
    return await work(services, config);
  } finally {
    await store.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
