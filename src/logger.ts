import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACT_PATHS, redactCensor } from './http/logging.js';

const ACCESS_LOG = Symbol('otpd.accessLog');

/**
 * Lines handed to `target` once per event-loop turn: the lines logged in one turn (a group commit answers
 * many requests in one, each with its access line) go out in one write instead of one each (~3 µs of
 * CPU less per request, docs/performance.md). A line waits until the end of its turn (`setImmediate`), or
 * until `flush()`; exported for its test.
 */
export function writtenOncePerTurn(target: { write(text: string): unknown }): DestinationStream & { flush(done?: () => void): void } {
  let pending = '';
  let scheduled = false;
  // `done`: pino's `logger.flush(cb)` passes one and waits for it; the write is synchronous, so it is done.
  const flush = (done?: unknown): void => {
    scheduled = false;
    if (pending !== '') {
      const lines = pending;
      pending = '';
      target.write(lines);
    }
    if (typeof done === 'function') done();
  };
  return {
    write(line: string): void {
      pending += line;
      if (scheduled) return;
      scheduled = true;
      setImmediate(flush);
    },
    flush,
  };
}

let processStdout: DestinationStream | undefined;

/**
 * The process's stdout for every logger made without a destination, one stream so lines never interleave.
 * Written synchronously (pino's default destination), once per turn, and flushed at exit, so a line is
 * lost only by a kill -9 in the turn that logged it.
 */
function stdout(): DestinationStream {
  if (!processStdout) {
    const stream = writtenOncePerTurn(pino.destination(1));
    process.once('exit', () => stream.flush());
    processStdout = stream;
  }
  return processStdout;
}

/**
 * Writes the one line per request (src/http/app.ts). Positional, so a request makes no object for it. The
 * fields are ones otpd builds itself: the request id, the method, the URL cleaned by safeUrl, the client
 * address, the status and the duration in ms.
 */
export type AccessLog = (reqId: string, method: string, url: string, ip: string | undefined, statusCode: number, ms: number) => void;

/** The process logger: JSON lines on stdout, with credential and code fields redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: redactCensor }, base: { pid: process.pid } };
  // One stream for both loggers below, so their lines never interleave mid-line.
  const stream: DestinationStream | NodeJS.WritableStream = destination ?? stdout();
  const logger = pino(options, stream);
  (logger as unknown as Record<symbol, AccessLog>)[ACCESS_LOG] = accessLogTo(pino({ level, base: { pid: process.pid } }, stream), stream);
  return logger;
}

/**
 * The access line as pino writes `access.info({reqId, method, url, ip, statusCode, ms}, 'request')`, the
 * same text byte for byte, built directly: it skips the redaction pass (nothing in it needs one) and
 * pino's generic field loop, which together cost more than the rest of the line (docs/performance.md).
 * `access` still decides whether info lines are written (OTPD_LOG_LEVEL).
 */
function accessLogTo(access: Logger, stream: DestinationStream | NodeJS.WritableStream): AccessLog {
  const pid = `,"pid":${process.pid}`;
  return (reqId, method, url, ip, statusCode, ms) => {
    if (!access.isLevelEnabled('info')) return;
    // pino leaves out an undefined field and writes a non-finite number as null.
    const address = ip === undefined ? '' : `,"ip":${JSON.stringify(ip)}`;
    stream.write(
      `{"level":30,"time":${Date.now()}${pid},"reqId":${JSON.stringify(reqId)},"method":${JSON.stringify(method)},"url":${JSON.stringify(url)}${address},"statusCode":${statusCode},"ms":${Number.isFinite(ms) ? ms : null},"msg":"request"}\n`,
    );
  };
}

/** The access log made with `logger` by createLogger, or one through `logger` itself (redacted) for any other. */
export function accessLogOf(logger: Logger): AccessLog {
  return (
    (logger as unknown as Record<symbol, AccessLog | undefined>)[ACCESS_LOG] ??
    ((reqId, method, url, ip, statusCode, ms) => logger.info({ reqId, method, url, ip, statusCode, ms }, 'request'))
  );
}
