import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { loadMigrations } from '../../src/store/sqlite/migrate.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-migrations-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file as a release with schema `version` left it. */
function fileAtVersion(name: string, version: number): string {
  const path = join(dir, name);
  const db = new Database(path);
  for (const migration of loadMigrations().filter((m) => m.version <= version)) db.exec(migration.sql);
  db.pragma(`user_version = ${version}`);
  db.close();
  return path;
}

describe('SQLite migrations', () => {
  it("004 carries each destination's running cooldown and send windows into its one row, and leaves other counters and records alone", async () => {
    const path = fileAtVersion('v3.db', 3);
    const W = 600_000;
    const now = Date.now();
    const start = Math.floor(now / W) * W;
    const app = 'app_01jz0000000000000000000000';
    const db = new Database(path);
    const counter = db.prepare('INSERT INTO counters (key, window_start, count, expires_at) VALUES (?, ?, ?, ?)');
    const sends = (windowStart: number, to: string) => `~sliding:${windowStart}:rl:${app}:sends-per-destination:${to}`;
    // +15550001: this window and the one before; +15550002: an older window only; +15550003: a cooldown only.
    counter.run(sends(start, '+15550001'), start, 3, start + 2 * W);
    counter.run(sends(start - W, '+15550001'), start - W, 2, start + W);
    counter.run(sends(start - W, '+15550002'), start - W, 4, start + W);
    counter.run(`~sliding:${start}:rl:${app}:verifications-per-ip:203.0.113.7`, start, 9, start + 2 * W);
    counter.run(`~sliding:${start}:rl:${app}:bucket:user:a:sends-per-destination:x`, start, 1, start + 2 * W);
    const record = db.prepare('INSERT INTO records (namespace, id, value, version, expires_at) VALUES (?, ?, ?, 1, ?)');
    record.run('send-cooldown', `${app}:+15550001`, JSON.stringify({ until: now + 20_000 }), now + 20_000);
    record.run('send-cooldown', `${app}:+15550003`, JSON.stringify({ until: now + 5_000 }), now + 5_000);
    record.run('subjects', `${app}:s1`, JSON.stringify({ phone: '+15550009' }), null);
    db.close();

    const store = await openSqliteStore({ path, checkpoint: false });
    await store.close();

    const after = new Database(path, { readonly: true });
    assert.equal(after.pragma('user_version', { simple: true }), 4);
    assert.deepEqual(after.prepare('SELECT to_address, cooldown_until, window_start, sends, previous_sends, expires_at FROM destinations WHERE app_id = ? ORDER BY to_address').all(app), [
      { to_address: '+15550001', cooldown_until: now + 20_000, window_start: start, sends: 3, previous_sends: 2, expires_at: start + 2 * W },
      { to_address: '+15550002', cooldown_until: 0, window_start: start - W, sends: 4, previous_sends: 0, expires_at: start + W },
      { to_address: '+15550003', cooldown_until: now + 5_000, window_start: 0, sends: 0, previous_sends: 0, expires_at: now + 5_000 },
    ]);
    assert.deepEqual(
      after.prepare('SELECT key FROM counters ORDER BY key').all().map((row) => (row as { key: string }).key),
      [`~sliding:${start}:rl:${app}:bucket:user:a:sends-per-destination:x`, `~sliding:${start}:rl:${app}:verifications-per-ip:203.0.113.7`],
    );
    assert.deepEqual(after.prepare('SELECT namespace FROM records').all(), [{ namespace: 'subjects' }]);
    after.close();
  });

  it('004 on a file with nothing to carry over', async () => {
    const path = fileAtVersion('empty-v3.db', 3);
    const store = await openSqliteStore({ path, checkpoint: false });
    const now = Date.now();
    assert.equal((await store.admitSend('app_x', '+15550100', { cooldownMs: 1_000, window: null }, now)).allowed, true);
    assert.equal((await store.admitSend('app_x', '+15550100', { cooldownMs: 1_000, window: null }, now + 1)).allowed, false);
    await store.close();
  });
});
