/**
 * Memory per pending verification in Redis: creates N pending verifications through the Redis store under a
 * throwaway prefix and prints the growth of INFO used_memory divided by N, next to MEMORY USAGE of one
 * verification hash and of one group's pending-pointer hash (shared by about N / 32768 destinations).
 * Deletes its keys afterwards. Run it against a Redis nobody else writes to for a clean number: other
 * clients' writes land in the same used_memory, and the keyspace's hash tables double at powers of two.
 *
 *   node --import tsx bench/redis-memory.ts [N] [redis://127.0.0.1:6379]
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { newId, routingTag } from '../src/core/ids.js';
import type { VerificationRecord } from '../src/core/verification.js';
import { openRedisStore } from '../src/store/redis/index.js';
import { groupOf, RedisKeys } from '../src/store/redis/keys.js';
import { pendingVerification } from '../test/support/fixtures.js';

const count = Number(process.argv[2] ?? 10_000);
const url = process.argv[3] ?? 'redis://127.0.0.1:6379';
const routingKey = randomBytes(32);
// As long as the default `otpd:` prefix, so the numbers are those of a default deployment.
const prefix = `b${randomBytes(2).toString('hex').slice(0, 3)}:`;
const keys = new RedisKeys(prefix);

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error('INFO memory has no used_memory');
  return Number(match[1]);
}

/** A realistic verification: E.164 destination, base64url HMAC, 8-character key id, no metadata. */
function verification(appId: string, index: number, now: number): VerificationRecord {
  const to = `+1555${String(index).padStart(7, '0')}`;
  return pendingVerification(routingKey, appId, to, now, { codeHash: randomBytes(32).toString('base64url'), codeKid: randomBytes(4).toString('hex') });
}

async function deletePrefix(client: Redis): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await client.unlink(...found);
  } while (cursor !== '0');
}

const client = new Redis(url);
const store = await openRedisStore({ urls: [url], cluster: false, prefix, routingKey });
try {
  const appId = newId('app');
  const now = Date.now();
  const before = await usedMemory(client);
  let sample: VerificationRecord | undefined;
  for (let start = 0; start < count; start += 500) {
    const batch = Array.from({ length: Math.min(500, count - start) }, (_, i) => verification(appId, start + i, now));
    sample ??= batch[0];
    await Promise.all(batch.map((record) => store.createVerification(record, now)));
  }
  const after = await usedMemory(client);
  const pointers = keys.pendingPointers(groupOf(routingTag(routingKey, appId, sample!.to)));
  const hashBytes = await client.memory('USAGE', keys.verification(sample!.id)!, 'SAMPLES', '0');
  const encoding = await client.object('ENCODING', keys.verification(sample!.id)!);
  const pointerBytes = await client.memory('USAGE', pointers, 'SAMPLES', '0');
  const pointerCount = (await client.hlen(pointers)) - 1;
  console.log(`pending verifications:        ${count}`);
  console.log(`used_memory delta / N:        ${((after - before) / count).toFixed(1)} bytes`);
  console.log(`MEMORY USAGE, one hash:       ${hashBytes} bytes (${encoding})`);
  console.log(`MEMORY USAGE, one group:      ${pointerBytes} bytes for ${pointerCount} pointers (${await client.object('ENCODING', pointers)})`);
} finally {
  await deletePrefix(client);
  await store.close();
  client.disconnect();
}
