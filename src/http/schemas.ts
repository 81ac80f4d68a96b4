import { Type } from 'typebox';
import { ERRORS, type ErrorCode } from '../errors.js';
import { problemType } from './problem.js';

/**
 * Schemas shared by route definitions for the OpenAPI document (src/http/openapi.ts): the RFC 9457
 * problem document every native error is, and `problemResponses(...)`, which turns error codes into
 * documented responses with one example per code.
 */

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

const FieldErrorSchema = Type.Object(
  {
    field: Type.String({ description: 'plain dotted path of the field (`to`, `metadata.plan`), or `body`' }),
    message: Type.String({ description: 'the rule the value broke' }),
  },
  { additionalProperties: true },
);

/**
 * RFC 9457 problem details. Extension members (e.g. `verificationStatus` on a 409) are allowed, so the
 * schema serializes every member `src/http/problem.ts` produces.
 */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the error: `urn:otpd:problem:<code>` (docs/api.md lists them)' }),
    title: Type.String({ description: 'short summary of the error type; the same for every occurrence' }),
    status: Type.Integer({ description: 'the HTTP status code' }),
    detail: Type.String({ description: 'what went wrong in this request, in words' }),
    errors: Type.Optional(Type.Array(FieldErrorSchema, { description: 'one entry per invalid field (validation errors only)' })),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** One realistic detail (and extra members) per code for the examples; codes missing here show their title. */
const EXAMPLES: Partial<Record<ErrorCode, { detail: string; extra?: Record<string, unknown> }>> = {
  VALIDATION: { detail: 'to: must be an E.164 phone number (+ and 8-15 digits) or an email address', extra: { errors: [{ field: 'to', message: 'must be an E.164 phone number (+ and 8-15 digits) or an email address' }] } },
  UNSUPPORTED_MEDIA_TYPE: { detail: 'send the body as application/json' },
  PAYLOAD_TOO_LARGE: { detail: 'the request body is larger than this route accepts' },
  UNAUTHORIZED: { detail: 'send your API key as "Authorization: Bearer KEY" or "X-API-Key: KEY"' },
  QUOTA_EXCEEDED: { detail: 'API Key usage limit reached! Allowed rate is 1000 API calls per hour' },
  NOT_FOUND: { detail: 'no verification ve_01m80cy3bdzhxb5418a41rr8gj' },
  ROUTE_NOT_FOUND: { detail: 'no route GET /v1/verificatons' },
  NOT_PENDING: { detail: 'verification ve_01m80cy3bdzhxb5418a41rr8gj is approved; only a pending verification can be resent', extra: { verificationStatus: 'approved' } },
  IDEMPOTENCY_IN_PROGRESS: { detail: 'the first request with this Idempotency-Key has not finished; retry shortly' },
  IDEMPOTENCY_MISMATCH: { detail: 'this Idempotency-Key was used with a different request body' },
  MAX_SENDS: { detail: 'this verification was already sent 5 times (limit 5); create a new one after it expires' },
  RESEND_COOLDOWN: { detail: 'wait 27 s before sending this verification again' },
  RATE_LIMITED: { detail: 'a code was sent to this destination less than 30 s ago; retry in 30 s', extra: { limit: 'destination-cooldown', windowSeconds: 30 } },
  FACTOR_NOT_VERIFIED: { detail: 'factor fa_01m80cy3bdzhxb5418a41rr8gk is not verified yet; verify it with a first code' },
  FACTOR_LOCKED: { detail: 'too many failed attempts; try again in 300 s' },
  SECRET_MISMATCH: { detail: 'the factor secret was encrypted with a key that is no longer configured (OTPD_SECRET / OTPD_SECRET_PREVIOUS)' },
  STORE_UNAVAILABLE: { detail: 'the store did not answer; retry shortly' },
  METRICS_UNAVAILABLE: { detail: 'the cluster primary did not answer a metrics request within 6000 ms' },
  INTERNAL: { detail: 'the server failed to handle this request; it has been logged' },
};

export function problemExample(code: ErrorCode): Record<string, unknown> {
  const { status, title } = ERRORS[code];
  const example = EXAMPLES[code];
  return { type: problemType(code), title, status, detail: example?.detail ?? title, ...example?.extra };
}

/** Errors every authenticated native route can answer with, besides its own. */
export const NATIVE_COMMON_ERRORS: readonly ErrorCode[] = ['UNAUTHORIZED', 'QUOTA_EXCEEDED', 'INTERNAL', 'STORE_UNAVAILABLE'];

export interface DocumentedResponse {
  description: string;
  headers?: Record<string, unknown>;
  content: Record<string, { schema: unknown; examples?: Record<string, { summary: string; value: unknown }> }>;
}

/**
 * Response entries for `schema.response`, grouped by status: `problemResponses('NOT_FOUND', 'NOT_PENDING')`
 * gives `{404: …, 409: …}` with an example per code. The schema sits under `content` keyed by
 * `application/problem+json`, which is the media type `sendProblem` answers with, so fastify also uses
 * it to serialize those answers.
 */
export function problemResponses(...codes: ErrorCode[]): Record<number, DocumentedResponse> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<number, DocumentedResponse> = {};
  for (const [status, group] of byStatus) {
    const retryable = group.some((code) => ERRORS[code].status === 429 || ERRORS[code].status === 503 || code === 'IDEMPOTENCY_IN_PROGRESS');
    out[status] = {
      description: group.map((code) => `${ERRORS[code].title} (${problemType(code)})`).join('; '),
      ...(retryable ? { headers: { 'retry-after': { type: 'integer', description: 'seconds to wait before retrying' } } } : {}),
      // OpenAPI media-type examples, named by code, so the docs page offers one per error.
      content: { [PROBLEM_MEDIA_TYPE]: { schema: ProblemSchema, examples: Object.fromEntries(group.map((code) => [code, { summary: ERRORS[code].title, value: problemExample(code) }])) } },
    };
  }
  return out;
}
