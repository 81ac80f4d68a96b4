import type { Store } from './store.js';

export type StoreOptions =
  | { backend: 'sqlite'; path: string; routingKey: Buffer }
  | { backend: 'redis'; urls: string[]; cluster: boolean; prefix: string; routingKey: Buffer };

/** Opens the configured backend. Redis is loaded only when asked for, so the SQLite default starts lean. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.backend === 'redis') {
    const { openRedisStore } = await import('./redis/index.js');
    return openRedisStore(options);
  }
  const { openSqliteStore } = await import('./sqlite/index.js');
  return openSqliteStore(options);
}

export type { Store } from './store.js';

