import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { pendingVerification } from '../support/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-destinations-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it("the cleanup removes a destination's row once its cooldown and counts are over, and keeps a live one", async () => {
  const path = join(dir, 'otpd.db');
  const store = await openSqliteStore({ path, checkpoint: false });
  const now = Date.now();
  const rule = { cooldownMs: 30_000, window: { max: 5, windowMs: 60_000 } };
  await store.admitSend('app_a', '+15550001', rule, now - 3 * 60_000);
  await store.admitSend('app_a', '+15550002', rule, now);
  // A restart without the window's rule keeps the row as long as the window still needs it.
  await store.restartCooldown('app_a', '+15550002', 1_000, now);
  await store.purgeVerifications(now);
  await store.close();
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT to_address, expires_at FROM destinations').all() as { to_address: string; expires_at: number }[];
  db.close();
  assert.deepEqual(rows.map((row) => row.to_address), ['+15550002']);
  assert.equal(rows[0]!.expires_at, Math.floor(now / 60_000) * 60_000 + 120_000);
});

it("the cleanup keeps a destination's row while it points to a pending verification a resend extended, and removes it after", async () => {
  const path = join(dir, 'pending.db');
  const store = await openSqliteStore({ path, checkpoint: false });
  const now = Date.now();
  const created = pendingVerification(Buffer.alloc(32, 7), 'app_a', '+15550003', now - 20 * 60_000, { expiresAt: now - 10 * 60_000 });
  await store.createVerification(created, created.createdAt);
  // +15550003 expired ten minutes ago, and its row with it; +15550004 was resent before it expired and is
  // pending until eight minutes from now, past the expiry its create gave the row.
  const live = pendingVerification(Buffer.alloc(32, 7), 'app_a', '+15550004', now - 20 * 60_000, { expiresAt: now - 10 * 60_000 });
  await store.createVerification(live, live.createdAt);
  const extended = await store.resendVerification('app_a', live.id, { codeHash: 'hash-2', codeKid: 'k1' }, { maxSends: 5, cooldownMs: 0, ttlMs: 19 * 60_000 }, now - 11 * 60_000);
  assert.equal(extended?.ok, true);
  await store.purgeVerifications(now - 60 * 60_000);
  const rows = () => {
    const db = new Database(path, { readonly: true });
    const found = (db.prepare('SELECT to_address FROM destinations WHERE app_id = ? ORDER BY to_address').all('app_a') as { to_address: string }[]).map((row) => row.to_address);
    db.close();
    return found;
  };
  assert.deepEqual(rows(), ['+15550004']);
  const next = pendingVerification(Buffer.alloc(32, 7), 'app_a', '+15550004', now);
  assert.equal((await store.createVerification(next, now)).supersededId, live.id, 'the kept pointer still finds it');
  await store.close();
});
