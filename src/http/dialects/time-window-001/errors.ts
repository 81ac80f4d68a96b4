import type { FastifyReply, FastifyRequest } from 'fastify';
import { toOtpdError } from '../../problem.js';
import { KEYLESS_ACCESS_OFF } from '../keyless-app.js';
import type { Operation } from './request.js';

/**
 * Seed 001's error body: `timestamp`, `status`, `errorCode`, message, `traceID`, details, `path`. The key
 * names follow the seed's examples for the operation and status (decisions 15): VALIDATE uses
 * `errorMessage`/`errorDetails`, GENERATE and every 500 use `error-message`/`error-details` (so does a body
 * whose operation is unknown). `traceID` is the request id, the one in the log line and `X-Request-Id`.
 * Details name the rule and field, never a stack trace. docs/dialects.md lists every errorCode.
 */
export interface TimeWindowFailure {
  kind: 'failure';
  errorCode: number;
  status: number;
  details: string;
  retryAfterMs?: number;
}

export function failure(errorCode: number, details: string, status = 422, retryAfterMs?: number): TimeWindowFailure {
  return retryAfterMs === undefined ? { kind: 'failure', errorCode, status, details } : { kind: 'failure', errorCode, status, details, retryAfterMs };
}

/** A broken DR rule: `DR-0002: channel must be one of Digital, Partner, App, Brand`. */
export function ruleFailure(errorCode: number, rule: string, text: string): TimeWindowFailure {
  return failure(errorCode, `${rule}: ${text}`);
}

export function isFailure(value: unknown): value is TimeWindowFailure {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'failure';
}

const MESSAGES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_ENTITY',
  429: 'TOO_MANY_REQUESTS',
  500: 'Internal Server Error',
  503: 'SERVICE_UNAVAILABLE',
};

/** Anything thrown (framework or service errors) as a 001 failure, each kind with its own errorCode. */
export function failureFromError(thrown: unknown): TimeWindowFailure {
  const error = toOtpdError(thrown);
  const retryAfterMs = error.retryAfter === undefined ? undefined : error.retryAfter * 1000;
  switch (error.code) {
    case 'VALIDATION':
      // What reaches here is a body fastify could not parse; rule failures are answered before.
      return failure(2, `body: ${error.message.replace(/^body: /, '')}`, 400);
    case 'UNSUPPORTED_MEDIA_TYPE':
      return failure(4, 'Content-Type: must be application/json', 415);
    case 'PAYLOAD_TOO_LARGE':
      return failure(5, 'body: is larger than 64 KiB', 413);
    case 'UNAUTHORIZED':
      return failure(error.extensions?.reason === KEYLESS_ACCESS_OFF ? 7 : 6, `Authorization: ${error.message}`, 401);
    case 'QUOTA_EXCEEDED':
      return failure(8, `Authorization: ${error.message}`, 403, retryAfterMs);
    case 'STORE_UNAVAILABLE':
      return failure(9, 'the store is unavailable; retry shortly', 503, 1_000);
    default:
      return failure(1, 'Internal Server Error', 500);
  }
}

export function sendFailure(request: FastifyRequest, reply: FastifyReply, failed: TimeWindowFailure, operation: Operation | undefined, cause?: unknown): FastifyReply {
  if (failed.status >= 500) request.log.error({ err: cause, errorCode: failed.errorCode }, 'seed-001 request failed');
  if (failed.retryAfterMs !== undefined) reply.header('Retry-After', String(Math.max(1, Math.ceil(failed.retryAfterMs / 1000))));
  const camel = operation === 'VALIDATE' && failed.status !== 500;
  const message = MESSAGES[failed.status] ?? 'ERROR';
  return reply.code(failed.status).send({
    timestamp: Date.now(),
    status: failed.status,
    errorCode: failed.errorCode,
    [camel ? 'errorMessage' : 'error-message']: message,
    traceID: request.id,
    [camel ? 'errorDetails' : 'error-details']: failed.details,
    path: request.url.split('?')[0],
  });
}
