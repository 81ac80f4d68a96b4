// The SQLite store's own thread (src/store/sqlite/thread.ts): opens the store here and runs the calls the
// event loop sends, a batch per message, answering each batch's results in one message. Plain JavaScript as
// the entry point so dist/ needs no loader; the store itself is imported (under tsx in tests, which the
// thread inherits through execArgv).
import { parentPort, workerData } from 'node:worker_threads';

/** What crosses back for a rejection: an OtpdError keeps its code and details, anything else its message. */
function serializeError(error) {
  if (error && typeof error === 'object' && error.name === 'OtpdError') {
    return { otpd: true, code: error.code, message: error.message, errors: error.errors, retryAfter: error.retryAfter, extensions: error.extensions };
  }
  // A system or SQLite error keeps its code too (EACCES, SQLITE_BUSY, …).
  return { otpd: false, name: error?.name ?? 'Error', message: error instanceof Error ? error.message : String(error), code: typeof error?.code === 'string' ? error.code : undefined };
}

let store;
try {
  // dist/ has index.js. A source checkout (tests, under tsx) has index.ts beside this file, and on Node 20 a
  // thread does not run its parent's `--import tsx`: the loader is registered here for it.
  const { openSqliteStore } = await import('./index.js').catch(async (error) => {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    const { register } = await import('tsx/esm/api');
    register();
    return import('./index.ts');
  });
  store = await openSqliteStore(workerData);
  parentPort.postMessage({ type: 'ready' });
} catch (error) {
  parentPort.postMessage({ type: 'failed', error: serializeError(error) });
}

if (store) {
  /** Results settled since the last message, sent together once this thread's turn is over. */
  let answers = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = answers;
    answers = [];
    parentPort.postMessage({ type: 'answers', answers: batch });
  };
  const answer = (entry) => {
    answers.push(entry);
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  parentPort.on('message', (message) => {
    if (message.type === 'close') {
      // The answers of calls sent before `close` go first: their writes commit as the store closes.
      const closed = (error) => setImmediate(() => {
        if (answers.length > 0) flush();
        parentPort.postMessage(error === undefined ? { type: 'closed' } : { type: 'closed', error: serializeError(error) });
      });
      store.close().then(() => closed(undefined), closed);
      return;
    }
    for (const [id, method, args] of message.calls) {
      let result;
      try {
        result = store[method](...args);
      } catch (error) {
        result = Promise.reject(error);
      }
      result.then(
        (value) => answer([id, true, value]),
        (error) => answer([id, false, serializeError(error)]),
      );
    }
  });
}
