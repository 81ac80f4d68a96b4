import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, Checkpointer, DEFAULT_AUTOCHECKPOINT_PAGES } from '../../src/store/sqlite/checkpointer.js';
import { openSqliteDatabase, openSqliteStore, SqliteStore } from '../../src/store/sqlite/index.js';
import { migrate } from '../../src/store/sqlite/migrate.js';
import { until } from '../support/fake-providers.js';
import { moduleUnderTest, runScriptToExit } from '../support/module-script.js';

/** Fast passes, so a test waits tens of milliseconds for one instead of the production 200. */
const FAST = { startDelayMs: 0, intervalMs: 20 };

/** A store as openSqliteStore makes it, with its connection at hand to read its pragmas. */
function open(path: string, checkpoint = FAST): { db: Database.Database; store: SqliteStore } {
  const db = openSqliteDatabase(path);
  migrate(db);
  return { db, store: new SqliteStore(db, checkpoint) };
}

const autocheckpoint = (db: Database.Database): number => db.pragma('wal_autocheckpoint', { simple: true }) as number;

/** `count` records of ~3.5 KB each, committed together: about a page apiece, all new, so the file grows. */
function burst(store: SqliteStore, start: number, count: number): Promise<unknown> {
  const now = Date.now();
  return Promise.all(Array.from({ length: count }, (_, i) => store.putRecord('ckpt', `r${String(start + i).padStart(8, '0')}`, { pad: 'x'.repeat(3500), i: start + i }, {}, now)));
}

/** Threads of this process (Linux), for "close leaves none behind". */
const threads = (): number => readdirSync('/proc/self/task').length;

/** The WAL checkpointer thread (src/store/sqlite/checkpointer.ts). */
describe('SQLite WAL checkpoints on a thread of their own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-sqlite-checkpointer-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies the WAL into the database file while the store commits: the WAL restarts and stays far below the backstop', async () => {
    const path = join(dir, 'bounded.db');
    const { db, store } = open(path);
    try {
      const checkpointer = store.checkpointer!;
      await until('the thread is up', () => checkpointer.state === 'running');
      // The store's own checkpoint is only a backstop now; below it every checkpoint is the thread's.
      assert.equal(autocheckpoint(db), BACKSTOP_AUTOCHECKPOINT_PAGES);
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const startSize = statSync(path).size;
      let largestWal = 0;
      let written = 0;
      for (let round = 0; round < 24; round++) {
        const before = statSync(path).size;
        await burst(store, written, 250);
        written += 250;
        largestWal = Math.max(largestWal, statSync(`${path}-wal`).size);
        // The second pass from now began after the burst's COMMIT (the first may have begun before it).
        // The burst's pages reach the database file only through a checkpoint, and this connection makes
        // none below the backstop: the thread copied them, all of the WAL.
        const passes = checkpointer.passes + 2;
        await until('the thread checkpoints the burst', () => checkpointer.passes >= passes && checkpointer.lastPass!.log > 0 && checkpointer.lastPass!.log === checkpointer.lastPass!.checkpointed && statSync(path).size > before);
      }
      const copiedPages = (statSync(path).size - startSize) / pageSize;
      // More pages went through the WAL than the backstop lets it hold, yet it never grew past a few bursts:
      // it was started over after the thread's complete checkpoints.
      assert.ok(copiedPages > BACKSTOP_AUTOCHECKPOINT_PAGES, `${copiedPages} pages copied`);
      assert.ok(largestWal < (BACKSTOP_AUTOCHECKPOINT_PAGES / 4) * (pageSize + 24), `the WAL reached ${largestWal} bytes`);
      assert.equal(checkpointer.state, 'running');
      assert.equal(autocheckpoint(db), BACKSTOP_AUTOCHECKPOINT_PAGES);
      assert.equal((await store.getRecord<{ i: number }>('ckpt', 'r00005999', Date.now()))?.value.i, 5999);
    } finally {
      await store.close();
    }
  });

  it('a thread that dies gives the store its own checkpoints back (wal_autocheckpoint 1000)', async () => {
    const { db, store } = open(join(dir, 'killed.db'));
    try {
      const checkpointer = store.checkpointer!;
      await until('the thread is up', () => checkpointer.state === 'running');
      assert.equal(autocheckpoint(db), BACKSTOP_AUTOCHECKPOINT_PAGES);
      await checkpointer.thread!.terminate();
      await until('the store notices', () => checkpointer.state === 'failed');
      assert.equal(autocheckpoint(db), DEFAULT_AUTOCHECKPOINT_PAGES);
      await store.putRecord('ckpt', 'after', { ok: true }, {}, Date.now());
      assert.equal((await store.getRecord<{ ok: boolean }>('ckpt', 'after', Date.now()))?.value.ok, true);
    } finally {
      await store.close();
    }
  });

  it('a thread that cannot checkpoint the file never takes the store its checkpoints', async () => {
    // A rollback-journal file: the thread refuses it before its first pass, so it never reports ready.
    const path = join(dir, 'not-wal.db');
    const db = new Database(path);
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE t (x)');
    const checkpointer = new Checkpointer(db, FAST);
    try {
      await until('the thread fails', () => checkpointer.state === 'failed');
      assert.match(String(checkpointer.failure), /not in WAL mode/);
      assert.equal(autocheckpoint(db), DEFAULT_AUTOCHECKPOINT_PAGES);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  it('close ends the thread and waits for it: no thread left, the WAL checkpointed and deleted', { skip: !existsSync('/proc/self/task') && 'needs /proc' }, async () => {
    // libuv's pool starts all its threads at its first use; have it started before counting.
    await readFile(new URL(import.meta.url));
    const idle = threads();
    const path = join(dir, 'closed.db');
    const { store } = open(path);
    const checkpointer = store.checkpointer!;
    await until('the thread is up', () => checkpointer.state === 'running');
    assert.equal(threads(), idle + 1);
    await burst(store, 0, 50);
    await store.close();
    assert.equal(checkpointer.state, 'stopped');
    assert.equal(checkpointer.thread!.threadId, -1, 'the thread has exited');
    assert.equal(threads(), idle);
    // The last connection to close copies the whole WAL into the file and deletes it: both are closed.
    assert.equal(existsSync(`${path}-wal`), false);
    const reopened = new Database(path, { readonly: true });
    assert.equal(reopened.prepare<[], { n: number }>("SELECT count(*) AS n FROM records WHERE namespace = 'ckpt'").get()!.n, 50);
    reopened.close();
  });

  it('two stores on one file each run a thread: both keep running and checkpoint the file between them', async () => {
    const path = join(dir, 'two.db');
    // 1 ms apart, so that their passes meet: one of two that meet finds the checkpoint lock taken and
    // reports busy (-1, -1) instead of failing, which would end its thread.
    const stores = [open(path, { startDelayMs: 0, intervalMs: 1 }), open(path, { startDelayMs: 0, intervalMs: 1 })].map(({ store }) => store);
    try {
      await until('both threads are up', () => stores.every((store) => store.checkpointer!.state === 'running'));
      for (let round = 0; round < 10; round++) for (const [i, store] of stores.entries()) await burst(store, round * 100 + i * 50, 50);
      const passes = stores.map((store) => store.checkpointer!.passes + 2);
      await until('a pass of either thread covers the whole WAL', () =>
        stores.some(({ checkpointer }, i) => checkpointer!.passes >= passes[i]! && checkpointer!.lastPass!.log > 0 && checkpointer!.lastPass!.log === checkpointer!.lastPass!.checkpointed),
      );
      for (const store of stores) assert.equal(store.checkpointer!.state, 'running');
      assert.equal((await stores[1]!.getRecord<{ i: number }>('ckpt', 'r00000999', Date.now()))?.value.i, 999);
    } finally {
      for (const store of stores) await store.close();
    }
  });

  it('openSqliteStore: a file database gets a thread after START_DELAY_MS, an in-memory one none', async () => {
    const file = (await openSqliteStore({ path: join(dir, 'default.db') })) as SqliteStore;
    assert.equal(file.checkpointer?.state, 'waiting');
    await file.close();
    assert.equal(file.checkpointer?.state, 'stopped');
    assert.equal(file.checkpointer?.thread, undefined, 'closed before its start: no thread was made');
    const memory = (await openSqliteStore({ path: ':memory:' })) as SqliteStore;
    assert.equal(memory.checkpointer, undefined);
    await memory.close();
  });

  it('a process whose store is still open exits by itself: the thread never keeps it alive', async () => {
    const module = moduleUnderTest('store/sqlite/index');
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(module)});
      const store = await openSqliteStore({ path: ${JSON.stringify(join(dir, 'left-open.db'))}, checkpoint: { startDelayMs: 0 } });
      const started = Date.now();
      while (store.checkpointer.state !== 'running' && Date.now() - started < 20000) await new Promise((r) => setTimeout(r, 10));
      await store.putRecord('ckpt', 'x', { n: 1 }, {}, Date.now());
      console.log(store.checkpointer.state);`;
    const output = await runScriptToExit(script);
    assert.equal(output, 'running');
  });
});
