import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACT_PATHS, redactCensor } from './http/logging.js';

const ACCESS_LOGGER = Symbol('otpd.accessLogger');

/** The process logger: JSON lines on stdout, with credential and code fields redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: redactCensor }, base: { pid: process.pid } };
  // One stream for both loggers below, so their lines never interleave mid-line.
  const stream: DestinationStream | NodeJS.WritableStream = destination ?? pino.destination(1);
  const logger = pino(options, stream);
  // The one-line-per-request access log holds only fields otpd builds itself (src/http/app.ts: method, the
  // URL cleaned by safeUrl, client address, status, duration, request id), so it skips the redaction pass,
  // which costs more than the rest of the line (docs/performance.md). Everything else goes through `logger`.
  (logger as unknown as Record<symbol, Logger>)[ACCESS_LOGGER] = pino({ level, base: { pid: process.pid } }, stream);
  return logger;
}

/** The access logger made with `logger` by createLogger, or `logger` itself (redacted) for any other. */
export function accessLoggerOf(logger: Logger): Logger {
  return (logger as unknown as Record<symbol, Logger | undefined>)[ACCESS_LOGGER] ?? logger;
}
