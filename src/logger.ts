import { pino, type Logger } from 'pino';
import { REDACT_PATHS, redactCensor } from './http/logging.js';

/** The process logger: JSON lines on stdout, with credential and code fields redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: redactCensor }, base: { pid: process.pid } };
  return destination ? pino(options, destination) : pino(options);
}
