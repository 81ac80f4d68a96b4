/**
 * SQLite file size per verification: creates N pending verifications through the SQLite store, reports the
 * file size per verification, then lets the retention cleanup remove them once finished and expired, and
 * creates N more to show that the pages freed by the cleanup are reused (the file does not grow again).
 *
 *   node --import tsx bench/sqlite-size.ts [N=100000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { newId } from '../src/core/ids.js';
import type { VerificationRecord } from '../src/core/verification.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { pendingVerification } from '../test/support/fixtures.js';

const count = Math.min(10_000_000, Math.max(1_000, Number(process.argv[2] ?? 100_000)));
const routingKey = randomBytes(32);
const dir = mkdtempSync(join(tmpdir(), 'otpd-sqlite-size-'));
const path = join(dir, 'otpd.db');

/** The same realistic verification as bench/redis-memory.ts: E.164 destination, base64url HMAC, no metadata. */
function verification(appId: string, index: number, now: number): VerificationRecord {
  const to = `+1555${String(index).padStart(7, '0')}`;
  return pendingVerification(routingKey, appId, to, now, { codeHash: randomBytes(32).toString('base64url'), codeKid: randomBytes(4).toString('hex') });
}

/** The database file and its write-ahead log, checkpointed first so the numbers are the file's. */
function size(): { bytes: number; free: number } {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const free = (db.pragma('freelist_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  db.close();
  let bytes = statSync(path).size;
  try {
    bytes += statSync(path + '-wal').size;
  } catch {
    /* no WAL file */
  }
  return { bytes, free };
}

async function fill(store: Awaited<ReturnType<typeof openSqliteStore>>, appId: string, offset: number, now: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, count - start) }, (_, i) => store.createVerification(verification(appId, offset + start + i, now), now)));
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
try {
  const store = await openSqliteStore({ path });
  const appId = newId('app');
  const empty = size();
  const now = Date.now();
  await fill(store, appId, 0, now);
  const full = size();
  console.log(`pending verifications:           ${count}`);
  console.log(`file size:                       ${mib(full.bytes)} (${((full.bytes - empty.bytes) / count).toFixed(0)} bytes per verification, indexes included)`);
  // Retention cleanup once they all expired (the background job does this every minute).
  const removed = await store.purgeVerifications(now + 600_001);
  const purged = size();
  console.log(`after the cleanup removed ${removed}: ${mib(purged.bytes)} on disk, ${mib(purged.free)} of it free pages for reuse`);
  await fill(store, appId, count, now + 1);
  const refilled = size();
  console.log(`after ${count} new verifications:  ${mib(refilled.bytes)} (grew ${mib(Math.max(0, refilled.bytes - purged.bytes))}: freed pages were reused)`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
