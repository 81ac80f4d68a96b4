import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

/**
 * SQLite's default `wal_autocheckpoint` (https://www.sqlite.org/pragma.html#pragma_wal_autocheckpoint):
 * the connection that commits past 1,000 WAL pages checkpoints right after its COMMIT. The store's
 * connection keeps it until the thread is up, and gets it back whenever the thread is gone.
 */
export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

/**
 * The store's `wal_autocheckpoint` while the thread runs: a backstop, not 0. A passive checkpoint copies
 * the frames the WAL held when it began, so it is complete only if nothing committed while it ran, and
 * only then does the next writer start the WAL over from its beginning ("if the entire WAL has been
 * transferred into the database and synced and if no readers are making use of the WAL, then the writer
 * will rewind the WAL back to the beginning", https://www.sqlite.org/wal.html section 2.3); until then the
 * WAL only grows (section 5, "Avoiding Excessively Large WAL Files"). Under sustained writes a commit lands
 * during every pass of another thread, so the passes keep copying frames into the database file but never
 * complete: 22,000 creates through the HTTP benchmark with the store at 0 left a 36,063-frame (148 MB) WAL.
 * Past 4,000 frames the store's own COMMIT checkpoints, and nothing of this process commits while it does,
 * so that one completes; the thread has already copied all but the frames of its last interval, so it
 * copies little, and it comes four times less often than at 1,000. A server that is not saturated leaves
 * gaps between commits, the thread's passes complete in them, and the store never checkpoints.
 */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 4000;

/**
 * Between two passes. Each pass copies what was committed since the last one, so between complete
 * checkpoints the WAL grows by one interval of writes: a create adds ~1.6 frames, so at the 2,790 creates
 * a second of the HTTP benchmark's SQLite row that is ~900 frames, still under the 1,000 SQLite's default
 * lets accumulate. A pass with frames to copy syncs the WAL first, so with `synchronous = NORMAL` a commit
 * is also on disk within about one interval. A pass with nothing to copy costs a few system calls; a
 * shorter interval buys more fsyncs, not a WAL small enough to matter.
 */
export const CHECKPOINT_INTERVAL_MS = 200;

/**
 * A thread costs ~60 ms of CPU to start on the 2-core benchmark machine. Until it is up the store
 * checkpoints as SQLite always does, so waiting loses nothing, and stores that live less than this (CLI
 * commands, most tests) never pay for one.
 */
export const START_DELAY_MS = 1000;

/** The thread is a plain JavaScript file (why: its header), next to this one in src/ and in dist/. */
const WORKER_URL = new URL('./checkpoint-worker.js', import.meta.url);

/** A pass's `PRAGMA wal_checkpoint(PASSIVE)` row: another checkpointer was busy; frames in the WAL; of them in the database file. */
export interface CheckpointPass {
  busy: number;
  log: number;
  checkpointed: number;
}

export interface CheckpointerOptions {
  /** Between passes; CHECKPOINT_INTERVAL_MS by default. */
  intervalMs?: number;
  /** From the store's opening to the thread's start; START_DELAY_MS by default. */
  startDelayMs?: number;
}

type WorkerMessage = { type: 'ready' } | ({ type: 'pass' } & CheckpointPass);

/**
 * WAL checkpoints off the event loop. better-sqlite3 runs every statement on the event loop, and with the
 * default `wal_autocheckpoint` one COMMIT in ~1,000 pages also copies the WAL into the database file and
 * fsyncs both, which every request of that turn waits for. Here a worker thread with a connection of its
 * own to the same file runs `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`: PASSIVE never takes the
 * write lock, never waits for readers or writers and never calls the busy handler
 * (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html), so the store's connection never waits for it, and
 * a second one on the file (another process of `serve --workers N`) only finds the checkpoint lock taken.
 *
 * Only once the thread has made its first pass does the store's connection raise `wal_autocheckpoint` to
 * the backstop; if the thread cannot start, throws or exits, the store goes back to SQLite's default, so
 * the WAL is never left without a checkpointer. Nothing is logged (the store has no logger): `failure`
 * holds the reason. Checkpoints only copy what the WAL already holds durably, so a thread that dies
 * mid-pass loses nothing: the next checkpoint, or recovery, copies the same frames again.
 */
export class Checkpointer {
  private worker: Worker | undefined;
  private readonly timer: NodeJS.Timeout;
  private exited: Promise<void> = Promise.resolve();
  private readonly path: string;
  state: 'waiting' | 'starting' | 'running' | 'failed' | 'stopped' = 'waiting';
  /** Passes the thread has reported, and the latest of them. */
  passes = 0;
  lastPass: CheckpointPass | undefined;
  /** Why the thread is gone, when it failed. */
  failure: unknown;

  constructor(
    private readonly db: Database,
    private readonly options: CheckpointerOptions = {},
  ) {
    // Resolved now: a relative path would mean another file after a `process.chdir` before the start.
    this.path = resolve(db.name);
    this.timer = setTimeout(() => this.start(), options.startDelayMs ?? START_DELAY_MS).unref();
  }

  /** The thread, once started (for tests and diagnostics). */
  get thread(): Worker | undefined {
    return this.worker;
  }

  private start(): void {
    if (this.state !== 'waiting') return;
    let worker: Worker;
    try {
      // No execArgv: the parent's (`--import tsx`, a profiler) would only slow the thread's start.
      worker = new Worker(WORKER_URL, { workerData: { path: this.path, intervalMs: this.options.intervalMs ?? CHECKPOINT_INTERVAL_MS }, execArgv: [] });
    } catch (error) {
      this.fail(error);
      return;
    }
    this.state = 'starting';
    this.worker = worker;
    this.exited = new Promise((done) => worker.once('exit', () => done()));
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'pass') {
        this.passes++;
        this.lastPass = { busy: message.busy, log: message.log, checkpointed: message.checkpointed };
      } else if (this.state === 'starting' && this.db.open) {
        this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
        this.state = 'running';
      }
    });
    worker.once('error', (error) => this.fail(error));
    worker.once('exit', (code) => this.fail(new Error(`the checkpoint thread exited with code ${code}`)));
    // Never what keeps a process alive: its work only matters while the store is in use. After the
    // listeners: the first 'message' listener refs the thread's port again.
    worker.unref();
  }

  /** The thread is gone without `stop`: the store checkpoints for itself again. */
  private fail(error: unknown): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'failed';
    this.failure = error;
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT_PAGES}`);
  }

  /**
   * Ends the thread and waits until it has closed its connection, so the store's connection closes last
   * and SQLite's close-time checkpoint copies the rest of the WAL and deletes it.
   */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    const running = this.state === 'starting' || this.state === 'running';
    this.state = 'stopped';
    if (!this.worker) return;
    // Referenced again, so that the process stays up until the thread is gone (a failed one may still be
    // exiting) and has closed its connection.
    this.worker.ref();
    if (running) this.worker.postMessage('stop');
    await this.exited;
  }
}
