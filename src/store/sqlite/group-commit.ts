import type { Database, Statement } from 'better-sqlite3';
import { OtpdError } from '../../errors.js';

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The group commits of this process, by database file. Two connections of one process to one file must not
 * hold write transactions across a turn at once: a connection that begins a write while another one's
 * transaction waits for its commit on `setImmediate` would wait (busy_timeout, synchronously) for a commit
 * that needs this very event loop, and fail after 5 s with SQLITE_BUSY. Tests and embedders open several
 * stores on one file; the server opens one. Other processes (`--workers`) commit on their own loops.
 */
const groupsByFile = new Map<string, Set<GroupCommit>>();

/**
 * Group commit (decisions 21): every write of one event-loop turn runs inside one IMMEDIATE transaction
 * that commits on the next `setImmediate`. A write's promise resolves only after COMMIT, so an HTTP reply
 * is never sent for data a crash could still lose, and one fsync is shared by every request of the turn.
 *
 * Each write runs in its own SAVEPOINT, so a write that throws rolls back only itself, not its neighbours in
 * the batch.
 *
 * Reads outside a write share one read transaction per turn too: each transaction of its own takes and
 * drops the file's and the WAL's read locks (system calls), which cost more than the read. A write in the
 * same turn ends that read transaction first; reads after it run inside the write transaction.
 */
export class GroupCommit {
  private waiters: Waiter[] = [];
  private open = false;
  /** A read transaction of this turn is open (never together with `open`). */
  private reading = false;
  /** Prepared once: `db.transaction(work)` would build four wrapper functions for every write. */
  private readonly savepoint: Statement;
  private readonly release: Statement;
  private readonly rollbackTo: Statement;
  private readonly begin: Statement;
  private readonly beginRead: Statement;
  private readonly commitStatement: Statement;

  /** The other group commits of this process on the same file (none for an in-memory database). */
  private readonly siblings: Set<GroupCommit> | undefined;

  constructor(private readonly db: Database) {
    if (!db.memory) {
      this.siblings = groupsByFile.get(db.name) ?? new Set();
      this.siblings.add(this);
      groupsByFile.set(db.name, this.siblings);
    }
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.beginRead = db.prepare('BEGIN DEFERRED');
    this.commitStatement = db.prepare('COMMIT');
    this.savepoint = db.prepare('SAVEPOINT otpd_write');
    this.release = db.prepare('RELEASE otpd_write');
    this.rollbackTo = db.prepare('ROLLBACK TO otpd_write');
  }

  /**
   * `single`: `work` changes the database with at most one statement, its last (reads before it are
   * fine). A statement that fails undoes itself, so such a write needs no SAVEPOINT of its own: that saves
   * two statements of the few a typical write makes.
   */
  run<T>(work: () => T, single = false): Promise<T> {
    if (!this.open) {
      this.endRead();
      // Another connection of this process with a write pending commits it now rather than at its turn's
      // end (groupsByFile): its statements have all run, only their COMMIT was waiting.
      if (this.siblings) for (const sibling of this.siblings) if (sibling !== this && sibling.open) sibling.commit();
      // IMMEDIATE takes the write lock now, so reads inside `work` and the write that follows them are one
      // atomic step even with other processes on the same file (busy_timeout makes them wait their turn).
      try {
        this.begin.run();
      } catch (error) {
        return Promise.reject(new OtpdError('STORE_UNAVAILABLE', 'the database is busy: another process held its write lock too long', { cause: error }));
      }
      this.open = true;
      setImmediate(() => this.commit());
    }
    let result: T;
    if (!single) this.savepoint.run();
    try {
      result = work();
      if (!single) this.release.run();
    } catch (error) {
      // Undoes this write alone; the savepoint is then released so the batch's transaction goes on.
      if (!single && this.db.inTransaction) {
        this.rollbackTo.run();
        this.release.run();
      }
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ resolve: () => resolve(result), reject });
    });
  }

  /** Runs a read: inside this turn's write transaction if one is open, else in this turn's read transaction. */
  read<T>(work: () => T): T {
    if (!this.open && !this.reading && !this.db.inTransaction) {
      this.beginRead.run();
      this.reading = true;
      setImmediate(() => this.endRead());
    }
    return work();
  }

  /** Never throws: it runs from `setImmediate` too, and a read transaction has nothing to lose. */
  private endRead(): void {
    if (!this.reading) return;
    this.reading = false;
    try {
      // A failed statement may have ended the transaction already.
      if (this.db.inTransaction) this.commitStatement.run();
    } catch {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        /* the transaction is already gone */
      }
    }
  }

  private commit(): void {
    // Already committed: by `flush`, or early for a sibling's write (a new transaction of this turn, if any,
    // is then committed by this call instead, which only resolves its waiters sooner).
    if (!this.open) return;
    const waiters = this.waiters;
    this.waiters = [];
    this.open = false;
    try {
      this.commitStatement.run();
    } catch (error) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        /* the transaction is already gone */
      }
      const failure = new OtpdError('STORE_UNAVAILABLE', 'the database could not commit', { cause: error });
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }

  /** Commits what is pending now (used before close). */
  flush(): void {
    this.endRead();
    this.commit();
  }

  /** Commits what is pending and forgets this connection (before it closes). */
  close(): void {
    this.flush();
    if (!this.siblings) return;
    this.siblings.delete(this);
    if (this.siblings.size === 0) groupsByFile.delete(this.db.name);
  }
}
