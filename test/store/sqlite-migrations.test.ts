import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { loadMigrations } from '../../src/store/sqlite/migrate.js';
import { pendingVerification } from '../support/fixtures.js';

const ROUTING_KEY = Buffer.alloc(32, 7);
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
    assert.equal(after.pragma('user_version', { simple: true }), loadMigrations().at(-1)!.version);
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

  it("005 points each destination's row at its pending verification, so the next create supersedes it, and drops the pending index", async () => {
    const path = fileAtVersion('v4.db', 4);
    const app = 'app_01jz0000000000000000000001';
    const now = Date.now();
    const db = new Database(path);
    const columns = 'id, app_id, to_address, channel, status, code_hash, code_kid, code_length, attempts, max_attempts, sends, locale, metadata, expires_at, created_at, updated_at, last_sent_at, delivery_status, delivery_provider, provider_message_id, failure_reason';
    const insert = db.prepare(`INSERT INTO verifications (${columns}) VALUES (${columns.split(', ').map(() => '?').join(', ')})`);
    const row = (to: string, createdAt: number, status: string, attempts = 0) => {
      const v = pendingVerification(ROUTING_KEY, app, to, createdAt, { status: status as 'pending', attempts });
      insert.run(v.id, v.appId, v.to, v.channel, v.status, v.codeHash, v.codeKid, v.codeLength, v.attempts, v.maxAttempts, v.sends, null, null, v.expiresAt, v.createdAt, v.updatedAt, v.lastSentAt, v.deliveryStatus, null, null, null);
      return v;
    };
    // +15550001: pending, with a cooldown row already there; +15550002: pending, no row; +15550003: approved only.
    const first = row('+15550001', now - 1_000, 'pending', 2);
    const second = row('+15550002', now - 2_000, 'pending');
    row('+15550003', now - 3_000, 'approved');
    db.prepare('INSERT INTO destinations (app_id, to_address, cooldown_until, window_start, sends, previous_sends, expires_at) VALUES (?, ?, ?, 0, 0, 0, ?)').run(app, '+15550001', now + 20_000, now + 20_000);
    db.close();

    const store = await openSqliteStore({ path, checkpoint: false });
    assert.equal((await store.findPendingVerification(app, '+15550001', now))?.id, first.id);
    assert.equal((await store.findPendingVerification(app, '+15550002', now))?.id, second.id);
    assert.equal(await store.findPendingVerification(app, '+15550003', now), undefined);
    const next = pendingVerification(ROUTING_KEY, app, '+15550001', now);
    const created = await store.createVerification(next, now);
    assert.equal(created.supersededId, first.id);
    assert.equal(created.verification.attempts, 2, 'the wrong attempts of the superseded one are carried');
    assert.equal((await store.getVerification(app, first.id))?.status, 'canceled');
    await store.close();

    const after = new Database(path, { readonly: true });
    assert.deepEqual(after.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name = 'verifications_pending_by_destination'").get(), { n: 0 });
    assert.deepEqual(after.prepare('SELECT to_address, cooldown_until, expires_at, pending_id FROM destinations WHERE app_id = ? ORDER BY to_address').all(app), [
      { to_address: '+15550001', cooldown_until: now + 20_000, expires_at: next.expiresAt, pending_id: next.id },
      { to_address: '+15550002', cooldown_until: 0, expires_at: second.expiresAt, pending_id: second.id },
    ]);
    after.close();
  });
});
