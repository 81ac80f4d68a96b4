/**
 * Every error otpd can answer with, declared once as a named code (the way fastify's lib/errors.js does).
 * Services throw `OtpdError`s; `src/http/problem.ts` maps them to RFC 9457 problem documents in one place,
 * and each dialect maps the same codes to its own envelope.
 */

export interface FieldError {
  /** Plain dotted path of the offending field (`to`, `metadata.plan`), never a JSON pointer (decisions 9). */
  field: string;
  message: string;
}

interface ErrorDefinition {
  status: number;
  title: string;
}

export const ERRORS = {
  VALIDATION: { status: 400, title: 'Invalid request' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNAUTHORIZED: { status: 401, title: 'Missing or invalid API key' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  APP_EXISTS: { status: 409, title: 'App already exists' },
  NOT_PENDING: { status: 409, title: 'Verification is not pending' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is still in progress' },
  IDEMPOTENCY_MISMATCH: { status: 422, title: 'Idempotency-Key reused with a different request' },
  MAX_SENDS: { status: 429, title: 'Too many sends for this verification' },
  RESEND_COOLDOWN: { status: 429, title: 'Resend requested too soon' },
  RATE_LIMITED: { status: 429, title: 'Rate limit exceeded' },
  QUOTA_EXCEEDED: { status: 403, title: 'API key usage limit reached' },
  FACTOR_NOT_VERIFIED: { status: 409, title: 'Factor is not verified yet' },
  FACTOR_LOCKED: { status: 429, title: 'Too many failed attempts for this factor' },
  SECRET_MISMATCH: { status: 500, title: 'Stored secret cannot be decrypted with the configured keys' },
  STORE_UNAVAILABLE: { status: 503, title: 'Store unavailable' },
  METRICS_UNAVAILABLE: { status: 503, title: 'Metrics unavailable' },
  CONFIG: { status: 500, title: 'Invalid configuration' },
  INTERNAL: { status: 500, title: 'Internal server error' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

export interface OtpdErrorOptions {
  errors?: FieldError[];
  /** Seconds until the caller may try again; sent as `Retry-After`. */
  retryAfter?: number;
  /** Extra members for the problem document (e.g. the verification a 409 refers to). */
  extensions?: Record<string, unknown>;
  cause?: unknown;
}

export class OtpdError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  readonly retryAfter: number | undefined;
  readonly extensions: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, options: OtpdErrorOptions = {}) {
    const definition = ERRORS[code];
    super(detail ?? definition.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OtpdError';
    this.code = code;
    this.status = definition.status;
    this.title = definition.title;
    this.errors = options.errors;
    this.retryAfter = options.retryAfter;
    this.extensions = options.extensions;
  }
}

/** A validation error for one field: `invalid('to', 'must be an E.164 number or an email address')`. */
export function invalid(field: string, message: string): OtpdError {
  return new OtpdError('VALIDATION', `${field}: ${message}`, { errors: [{ field, message }] });
}

export function isOtpdError(error: unknown, code?: ErrorCode): error is OtpdError {
  return error instanceof OtpdError && (code === undefined || error.code === code);
}
