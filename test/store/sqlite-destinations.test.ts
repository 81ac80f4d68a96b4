import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

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
