import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { maskDestination } from '../core/destination.js';
import { ERRORS } from '../errors.js';

/** Fields that carry a phone number or an email address, here and in the dialects. */
const DESTINATION_FIELDS = ['to', 'mobile', 'mobile_no', 'phone', 'phoneNumber', 'email', 'recipient', 'destination'] as const;
/** Node system errors (ECONNREFUSED), Node internal (ERR_…) and fastify (FST_…) error codes. */
const ERROR_NAME = /^(E[A-Z]{2,}|ERR_[A-Z0-9_]+|FST_[A-Z0-9_]+)$/;

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
  const path = (question === -1 ? url : url.slice(0, question)).replace(/\/codes\/[^/]+/i, '/codes/***').replace(/\/appkeys\/[^/]+/i, '/appkeys/***');
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

export function requestLogFields(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: safeUrl(request.url), ip: request.ip };
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
  let child: FastifyBaseLogger | undefined;
  const real = () => (child ??= logger.child(bindings, options));
  return new Proxy({} as FastifyBaseLogger, {
    get(_target, property) {
      // Methods are answered without making the child (fastify checks a custom child logger has them),
      // and make it when called; any other property needs the real child.
      if (typeof Reflect.get(logger, property, logger) === 'function') {
        return (...args: unknown[]) => {
          const target = real();
          return (Reflect.get(target, property, target) as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const target = real();
      return Reflect.get(target, property, target);
    },
    set(_target, property, value) {
      return Reflect.set(real(), property, value);
    },
    has(_target, property) {
      return Reflect.has(real(), property);
    },
  });
}
