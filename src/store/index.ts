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
  // On a thread of its own: better-sqlite3's statements and commits would otherwise run on the event loop.
  const { openSqliteThreadStore } = await import('./sqlite/thread.js');
  return openSqliteThreadStore({ path: options.path });
}

export type { Store } from './store.js';

