import type { FastifyBaseLogger } from 'fastify';
import { maskDestination } from '../core/destination.js';
import { ERRORS } from '../errors.js';

/** Fields that carry a phone number or an email address, here and in the dialects. */
const DESTINATION_FIELDS = ['to', 'mobile', 'mobile_no', 'phone', 'phoneNumber', 'email', 'recipient', 'destination'] as const;
/** Node system errors (ECONNREFUSED), Node internal (ERR_…) and fastify (FST_…) error codes. */
const ERROR_NAME = /^(E[A-Z]{2,}|ERR_[A-Z0-9_]+|FST_[A-Z0-9_]+)$/;

/** Path segments that carry a secret in the segment after them (seed 004), tested once before replacing. */
const SECRET_SEGMENT = /\/(?:codes|appkeys)\/[^/]/i;

/** Query parameters whose values are codes, keys or secrets somewhere in otpd's dialects. */
const SECRET_PARAMS = /^(otp|code|generatedotp|encodedkey|encryptkey|signature|apikey|api_key|secret|client_secret|token|access_token)$/i;

function decodeParam(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * A URL fit for a log line: secret query values and the `/appkeys/{appKey}` and `/codes/{code}` path
 * segments (seed 004) are replaced by `***`, so no code or key reaches the logs (standards O3);
 * destinations in the query are masked.
 */
export function safeUrl(url: string): string {
  const question = url.indexOf('?');
  // Seed 004 carries its credential (appKey) and the code in the path.
  let path = question === -1 ? url : url.slice(0, question);
  if (SECRET_SEGMENT.test(path)) path = path.replace(/\/codes\/[^/]+/i, '/codes/***').replace(/\/appkeys\/[^/]+/i, '/appkeys/***');
  if (question === -1) return path;
  const params = url
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      const name = decodeParam(pair.slice(0, eq));
      if (SECRET_PARAMS.test(name)) return `${pair.slice(0, eq)}=***`;
      if ((DESTINATION_FIELDS as readonly string[]).includes(name)) return `${pair.slice(0, eq)}=${encodeURIComponent(maskDestination(decodeParam(pair.slice(eq + 1))))}`;
      return pair;
    });
  return `${path}?${params.join('&')}`;
}

/**
 * pino paths never written as they are (standards O3). Credentials in headers; any field that may hold a
 * code, secret or key, at the top of a log object and one level down (pino paths do not recurse); and
 * destinations, which are masked rather than removed so a log line still tells numbers apart.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  ...['code', 'otp', 'OTP', 'generatedOtp', 'secret', 'apiKey', 'password', 'token', 'accessToken', 'access_token', 'encryptKey', 'EncryptKey', 'Signature', 'encodedKey'].flatMap((field) => [field, `*.${field}`]),
  ...DESTINATION_FIELDS.flatMap((field) => [field, `*.${field}`]),
];

/**
 * What a redacted value becomes. Destinations are masked (`+1******0100`, `a***@example.com`, see
 * core/destination.ts). A `code` field also names errors (`code: 'STORE_UNAVAILABLE'`, `err.code:
 * 'ECONNREFUSED'`), which help and hold no secret: those names pass, every other `code` is removed.
 */
export function redactCensor(value: unknown, path: string[]): unknown {
  const field = path[path.length - 1] ?? '';
  if ((DESTINATION_FIELDS as readonly string[]).includes(field)) return typeof value === 'string' ? maskDestination(value) : '***';
  if (field === 'code' && typeof value === 'string' && (value in ERRORS || ERROR_NAME.test(value))) return value;
  return '***';
}

/**
 * fastify's `childLoggerFactory`: `request.log` as a stand-in that makes the real child logger (with the
 * request id bound) the first time it is used. Making a pino child with redaction on costs tens of
 * microseconds, and most requests never log anything but the access line.
 */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Parameters<FastifyBaseLogger['child']>[0], options?: Parameters<FastifyBaseLogger['child']>[1]): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger;
}

type LogMethod = (...args: unknown[]) => void;

/**
 * The stand-in: a plain class rather than a Proxy, because fastify checks every request's logger for its
 * methods (seven property reads), which a class answers from its prototype without running any code.
 */
class LazyChildLogger {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly childBindings: Parameters<FastifyBaseLogger['child']>[0],
    private readonly childOptions: Parameters<FastifyBaseLogger['child']>[1],
  ) {}

  private get real(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.childBindings, this.childOptions));
  }

  private call(method: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', args: unknown[]): void {
    const real = this.real;
    (real[method] as LogMethod).apply(real, args);
  }

  fatal(...args: unknown[]): void {
    this.call('fatal', args);
  }
  error(...args: unknown[]): void {
    this.call('error', args);
  }
  warn(...args: unknown[]): void {
    this.call('warn', args);
  }
  info(...args: unknown[]): void {
    this.call('info', args);
  }
  debug(...args: unknown[]): void {
    this.call('debug', args);
  }
  trace(...args: unknown[]): void {
    this.call('trace', args);
  }
  silent(...args: unknown[]): void {
    this.call('silent', args);
  }
  child(...args: Parameters<FastifyBaseLogger['child']>): FastifyBaseLogger {
    return this.real.child(...args);
  }
  get level(): string {
    return this.real.level;
  }
  set level(level: string) {
    this.real.level = level;
  }
  isLevelEnabled(level: string): boolean {
    return (this.real as unknown as { isLevelEnabled(level: string): boolean }).isLevelEnabled(level);
  }
  bindings(): Record<string, unknown> {
    return (this.real as unknown as { bindings(): Record<string, unknown> }).bindings();
  }
  flush(...args: unknown[]): void {
    (this.real as unknown as { flush: LogMethod }).flush(...args);
  }
}
