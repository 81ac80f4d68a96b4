// @ts-check
/**
 * The checkpointer's thread (src/store/sqlite/checkpointer.ts starts it and says why): a connection of its
 * own to the store's file, running `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`.
 *
 * Plain JavaScript on purpose: a worker thread does not get the TypeScript loader the tests and benchmarks
 * run under (`node --import tsx` registers its hooks for the main thread only), and the shipped image has
 * no tsx, so a `.ts` worker would need a loader in one form and fail in the other. This file runs as it is,
 * from src/ under tsx and from dist/ (scripts/copy-assets.mjs copies it) in the built server.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** @type {{ path: string, intervalMs: number }} */
const { path, intervalMs } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

// fileMustExist: the store's connection made the file; a wrong path must fail here, not create another.
const db = new Database(path, { fileMustExist: true });
// This connection never writes. A checkpoint syncs the WAL before it copies and the database file after a
// complete one, at NORMAL as at FULL (https://www.sqlite.org/pragma.html#pragma_synchronous).
db.pragma('synchronous = NORMAL');
// Opening the WAL can wait for a lock (another connection recovering it); PASSIVE itself never waits.
db.pragma('busy_timeout = 5000');
if (db.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error(`${path} is not in WAL mode`);
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

/** One checkpoint; its row goes to the store, which keeps the latest (tests, diagnostics). */
function pass() {
  const { busy, log, checkpointed } = /** @type {{ busy: number, log: number, checkpointed: number }} */ (checkpoint.get());
  port.postMessage({ type: 'pass', busy, log, checkpointed });
}

// Up and working only once a first pass has run: a file this connection cannot checkpoint fails here.
pass();
port.postMessage({ type: 'ready' });
const timer = setInterval(pass, intervalMs);
port.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
