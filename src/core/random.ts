import { randomBytes } from 'node:crypto';

/**
 * Random bytes are drawn from the CSPRNG a few KiB at a time and handed out once each: one `randomBytes`
 * call costs more than the rest of making an id or an AES-GCM IV (about 8 µs here), and a create makes
 * several of both. Every byte comes from `randomBytes` and none is handed out twice.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** `count` fresh CSPRNG bytes. A view into the pool: copy it if it must outlive the caller's use. */
export function pooledRandomBytes(count: number): Buffer {
  if (count > POOL_BYTES) return randomBytes(count);
  if (poolOffset + count > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  return out;
}
