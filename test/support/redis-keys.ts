import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** A key prefix no other test run uses, so runs sharing one Redis never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `otpd-test:${label}:${process.pid}:${randomBytes(4).toString('hex')}:`;
}

/** Every key under `prefix` on one Redis node (SCAN, so a large database is not blocked). */
export async function keysWithPrefix(client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key under `prefix` on one node; keys are deleted one by one so no cross-slot DEL is sent. */
export async function deleteKeysWithPrefix(client: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(client, prefix);
  await Promise.all(keys.map((key) => client.del(key)));
  return keys.length;
}

/** A short-lived plain client for test setup and inspection, failing fast instead of queueing. */
export function inspectionClient(url: string): Redis {
  return new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 1, commandTimeout: 2000, retryStrategy: () => null, lazyConnect: false });
}
