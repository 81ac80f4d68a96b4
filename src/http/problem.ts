import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, OtpdError, type FieldError } from '../errors.js';

/**
 * The one place errors become HTTP answers for the native API: RFC 9457 problem documents
 * (`application/problem+json`) with `type`, `title`, `status`, `detail`, and `errors: [{field, message}]`
 * for validation errors. No stack trace ever leaves the process.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function problemType(code: string): string {
  return `urn:otpd:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/metadata/plan` → `metadata.plan`; a missing or unknown property names itself (decisions 9). */
function fieldOf(error: AjvError, context: string | undefined): string {
  const path = error.instancePath.split('/').filter(Boolean).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'required' && typeof error.params.missingProperty === 'string') path.push(error.params.missingProperty);
  if (error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string') path.push(error.params.additionalProperty);
  if (path.length === 0) return context === 'body' || context === undefined ? 'body' : context;
  return path.join('.');
}

function messageOf(error: AjvError): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map(String).join(', ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}

export function fieldErrorsFromValidation(validation: AjvError[], context: string | undefined): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const error of validation) {
    const fieldError = { field: fieldOf(error, context), message: messageOf(error) };
    const key = `${fieldError.field}\u0000${fieldError.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(fieldError);
    }
  }
  return out;
}

/** Turns anything thrown in a request into an OtpdError: unknown errors become INTERNAL. */
export function toOtpdError(error: unknown): OtpdError {
  if (error instanceof OtpdError) return error;
  const fastifyError = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fastifyError.validation) {
    const errors = fieldErrorsFromValidation(fastifyError.validation, fastifyError.validationContext);
    return new OtpdError('VALIDATION', errors.map((e) => `${e.field}: ${e.message}`).join('; '), { errors });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OtpdError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OtpdError('PAYLOAD_TOO_LARGE', 'the request body is larger than this route accepts');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OtpdError('VALIDATION', 'body: must not be empty when Content-Type is application/json', { errors: [{ field: 'body', message: 'must not be empty when Content-Type is application/json' }] });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OtpdError('VALIDATION', 'body: is not valid JSON', { errors: [{ field: 'body', message: 'is not valid JSON' }] });
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return new OtpdError('VALIDATION', 'body: is not valid JSON', { errors: [{ field: 'body', message: 'is not valid JSON' }] });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 404) return new OtpdError('ROUTE_NOT_FOUND');
    if (status === 413) return new OtpdError('PAYLOAD_TOO_LARGE');
    if (status === 415) return new OtpdError('UNSUPPORTED_MEDIA_TYPE');
    return new OtpdError('VALIDATION', fastifyError.message);
  }
  return new OtpdError('INTERNAL', 'the server failed to handle this request; it has been logged', { cause: error });
}

export function problemOf(error: OtpdError): Problem {
  const problem: Problem = { type: problemType(error.code), title: error.title, status: error.status, detail: error.message };
  if (error.errors) problem.errors = error.errors;
  if (error.extensions) Object.assign(problem, error.extensions);
  return problem;
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, thrown: unknown): FastifyReply {
  const error = toOtpdError(thrown);
  if (error.status >= 500) request.log.error({ err: error.cause ?? thrown, code: error.code }, 'request failed');
  if (error.retryAfter !== undefined) reply.header('Retry-After', String(error.retryAfter));
  if (error.code === 'UNAUTHORIZED') reply.header('WWW-Authenticate', 'Bearer realm="otpd"');
  return reply.code(error.status).type('application/problem+json').send(problemOf(error));
}

/** Problem schema, for OpenAPI and serialization. */
export const problemCodes = Object.keys(ERRORS);
