import { Worker } from 'node:worker_threads';
import { OtpdError, type ErrorCode } from '../../errors.js';
import type { Store } from '../store.js';
import type { CheckpointerOptions } from './checkpointer.js';

const WORKER_URL = new URL('./thread-worker.js', import.meta.url);

/** Every method of the Store contract: the compile-time check below fails when the contract gains one not listed. */
const METHODS = [
  'ping', 'close', 'insertApp', 'getApp', 'getAppByName', 'listApps', 'updateApp', 'deleteApp', 'insertApiKey',
  'getApiKeyByHash', 'listApiKeys', 'revokeApiKey', 'createVerification', 'getVerification', 'findPendingVerification',
  'checkVerification', 'resendVerification', 'cancelVerification', 'recordDelivery', 'purgeVerifications',
  'eraseDestination', 'admitSend', 'refundSend', 'restartCooldown', 'beginIdempotent', 'completeIdempotent',
  'abandonIdempotent', 'hit', 'slidingHit', 'claimOnce', 'getRecord', 'putRecord', 'deleteRecord', 'listRecords',
  'appendAudit', 'listAudit', 'deleteAudit', 'purgeAudit', 'enqueueEvents', 'claimEvents', 'completeEvent', 'retryEvent',
  'enqueueOutbox', 'claimOutbox', 'renewOutbox', 'rescheduleOutbox', 'completeOutbox',
] as const satisfies readonly StoreMethod[];
type StoreMethod = { [K in keyof Store]: Store[K] extends (...args: never[]) => unknown ? K : never }[keyof Store];
type Unlisted = Exclude<StoreMethod, (typeof METHODS)[number]>;
const everyMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMethodListed;

type SerializedError =
  | { otpd: true; code: ErrorCode; message: string; errors?: OtpdError['errors']; retryAfter?: number; extensions?: Record<string, unknown> }
  | { otpd: false; name: string; message: string; code?: string };

type FromThread =
  | { type: 'ready' }
  | { type: 'failed'; error: SerializedError }
  | { type: 'answers'; answers: [id: number, ok: boolean, value: unknown][] }
  | { type: 'closed'; error?: SerializedError };

function revive(error: SerializedError): Error {
  if (error.otpd) {
    return new OtpdError(error.code, error.message, {
      ...(error.errors === undefined ? {} : { errors: error.errors }),
      ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
      ...(error.extensions === undefined ? {} : { extensions: error.extensions }),
    });
  }
  const revived: Error & { code?: string } = new Error(error.message);
  revived.name = error.name;
  if (error.code !== undefined) revived.code = error.code;
  return revived;
}

interface Waiting {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The SQLite store on a thread of its own. better-sqlite3 is synchronous, so on the event loop every
 * statement and COMMIT of a request is time the loop serves no one else; here the loop only sends the calls
 * of its turn in one message and receives their results in another, while the thread runs them (with the
 * same group commit: a write's answer comes after its COMMIT).
 */
export class SqliteThreadStore {
  readonly backend = 'sqlite' as const;
  private readonly waiting = new Map<number, Waiting>();
  private calls: [id: number, method: string, args: unknown[]][] = [];
  private scheduled = false;
  private nextId = 1;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(private readonly worker: Worker) {}

  static open(options: { path: string; checkpoint?: CheckpointerOptions | false }): Promise<SqliteThreadStore> {
    // No inherited execArgv (the other threads' way): a parent's `--input-type` or `--eval` would fail the thread.
    const worker = new Worker(WORKER_URL, { workerData: options, execArgv: [] });
    return new Promise((resolve, reject) => {
      const early = (error: Error) => reject(new OtpdError('STORE_UNAVAILABLE', `the SQLite thread failed to start: ${error.message}`, { cause: error }));
      worker.once('error', early);
      worker.once('message', (message: FromThread) => {
        worker.off('error', early);
        if (message.type !== 'ready') {
          void worker.terminate();
          reject(message.type === 'failed' ? revive(message.error) : new Error(`unexpected first message ${message.type}`));
          return;
        }
        worker.unref();
        const store = new SqliteThreadStore(worker);
        worker.on('message', (next: FromThread) => store.receive(next));
        worker.on('error', (error) => store.fail(error));
        worker.on('exit', (code) => store.fail(new Error(`the SQLite thread exited (code ${code})`)));
        resolve(store);
      });
    });
  }

  private call(method: string, args: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(new OtpdError('STORE_UNAVAILABLE', 'the SQLite thread is gone', { cause: this.failure }));
    const id = this.nextId++;
    this.calls.push([id, method, args]);
    if (!this.scheduled) {
      this.scheduled = true;
      // The calls of one event-loop turn go in one message.
      setImmediate(() => this.send());
    }
    // The thread keeps the process alive only while it owes an answer, like a socket with a request out: a
    // command that forgets to close the store still exits, and one that awaits a write never exits before it.
    if (this.waiting.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  private send(): void {
    this.scheduled = false;
    const calls = this.calls;
    this.calls = [];
    if (calls.length > 0) this.worker.postMessage({ type: 'calls', calls });
  }

  private receive(message: FromThread): void {
    if (message.type !== 'answers') return;
    for (const [id, ok, value] of message.answers) {
      const waiting = this.waiting.get(id);
      if (!waiting) continue;
      this.waiting.delete(id);
      if (ok) waiting.resolve(value);
      else waiting.reject(revive(value as SerializedError));
    }
    if (this.waiting.size === 0) this.worker.unref();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const gone = new OtpdError('STORE_UNAVAILABLE', 'the SQLite thread is gone', { cause: error });
    for (const waiting of this.waiting.values()) waiting.reject(gone);
    this.waiting.clear();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.failure) return;
      this.send();
      // Every call sent before close is answered first: the thread handles messages in order.
      await new Promise<void>((resolve, reject) => {
        const onMessage = (message: FromThread) => {
          if (message.type !== 'closed') return;
          this.worker.off('message', onMessage);
          if (message.error) reject(revive(message.error));
          else resolve();
        };
        this.worker.on('message', onMessage);
        this.worker.ref();
        this.worker.postMessage({ type: 'close' });
      });
      this.failure = new Error('closed');
      await this.worker.terminate();
    })();
    return this.closing;
  }
}

for (const method of METHODS) {
  if (method === 'close') continue;
  // As a class method would be: writable and configurable (tests wrap one), not enumerable.
  Object.defineProperty(SqliteThreadStore.prototype, method, {
    writable: true,
    configurable: true,
    value: function (this: SqliteThreadStore, ...args: unknown[]) {
      return (this as unknown as { call(method: string, args: unknown[]): Promise<unknown> }).call(method, args);
    },
  });
}

export async function openSqliteThreadStore(options: { path: string; checkpoint?: CheckpointerOptions | false }): Promise<Store> {
  return (await SqliteThreadStore.open(options)) as unknown as Store;
}
