import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isOtpdError } from '../../src/errors.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

/** Group commit (src/store/sqlite/group-commit.ts) when the write lock is not this connection's alone. */
describe('SQLite write transactions and other connections', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-sqlite-connections-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('two stores on one file in one process write in the same turn without waiting for each other', async () => {
    const path = join(dir, 'shared.db');
    const first = await openSqliteStore({ path });
    const second = await openSqliteStore({ path });
    try {
      const now = Date.now();
      const started = performance.now();
      // Without the hand-over the second write waits 5 s (busy_timeout) for a commit that needs this very
      // event loop, then fails with SQLITE_BUSY.
      const writes = await Promise.allSettled([first.putRecord('ns', 'a', { n: 1 }, {}, now), second.putRecord('ns', 'b', { n: 2 }, {}, now), first.putRecord('ns', 'c', { n: 3 }, {}, now)]);
      assert.deepEqual(
        writes.map((write) => write.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
      );
      assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
      for (const store of [first, second]) {
        for (const [id, n] of [['a', 1], ['b', 2], ['c', 3]] as const) assert.equal((await store.getRecord<{ n: number }>('ns', id, now))?.value.n, n);
      }
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('a store opens on a file while another store of the process has a write waiting for its commit', async () => {
    const path = join(dir, 'opening.db');
    const first = await openSqliteStore({ path, checkpoint: false });
    let second: Awaited<ReturnType<typeof openSqliteStore>> | undefined;
    try {
      const now = Date.now();
      // The write holds the file's write lock until its group commits at the end of this turn.
      const pending = first.putRecord('ns', 'a', { n: 1 }, {}, now);
      const started = performance.now();
      // In the same turn: opening must not take the write lock for a schema that is up to date, or it waits
      // 5 s (busy_timeout) for a commit that needs this very event loop, then fails with SQLITE_BUSY.
      second = await openSqliteStore({ path, checkpoint: false });
      assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
      await pending;
      assert.equal((await second.getRecord<{ n: number }>('ns', 'a', now))?.value.n, 1);
    } finally {
      await first.close();
      await second?.close();
    }
  });

  it('a write that cannot take the lock rejects with STORE_UNAVAILABLE once busy_timeout has passed', async () => {
    const path = join(dir, 'locked.db');
    const store = await openSqliteStore({ path });
    // Another connection (as another process would) holds the write lock past busy_timeout (5 s).
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    try {
      const pending = store.putRecord('ns', 'x', { n: 1 }, {}, Date.now());
      assert.ok(pending instanceof Promise, 'a refused write is a rejected promise, not a synchronous throw');
      await assert.rejects(pending, (error: unknown) => isOtpdError(error) && error.code === 'STORE_UNAVAILABLE');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    // Once the lock is free the store writes again.
    await store.putRecord('ns', 'y', { n: 2 }, {}, Date.now());
    assert.equal((await store.getRecord<{ n: number }>('ns', 'y', Date.now()))?.value.n, 2);
    await store.close();
  });
});
