import type { FastifyReply, FastifyRequest } from 'fastify';
import { OtpdError } from '../../../errors.js';
import { toOtpdError } from '../../problem.js';

/**
 * otpgateway's envelope: `{"status": "success", "data": …}` or `{"status": "error", "message": …, "data"?}`,
 * always `application/json; charset=utf-8`. No stack trace or internal detail ever goes out.
 */
export interface Envelope {
  status: 'success' | 'error';
  message?: string;
  data?: unknown;
}

export function success(data: unknown): Envelope {
  return { status: 'success', data };
}

/** Errors of @fastify/multipart, which are not OtpdErrors, in words a form client can act on. */
function multipartError(code: string | undefined): OtpdError | undefined {
  switch (code) {
    case 'FST_FILES_LIMIT':
      return new OtpdError('VALIDATION', 'file uploads are not accepted: send text fields only', { errors: [{ field: 'body', message: 'must not contain files' }] });
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new OtpdError('PAYLOAD_TOO_LARGE', 'too many form fields: send at most 20');
    case 'FST_PROTO_VIOLATION':
      return new OtpdError('VALIDATION', 'a form field name is not allowed', { errors: [{ field: 'body', message: 'has a reserved field name' }] });
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
    case 'FST_MP_PREMATURE_CLOSE':
      return new OtpdError('VALIDATION', 'the multipart/form-data body is malformed', { errors: [{ field: 'body', message: 'is malformed multipart/form-data' }] });
  }
  return undefined;
}

/** Maps anything thrown under `/api` to otpgateway's envelope and status codes. */
export function sendError(request: FastifyRequest, reply: FastifyReply, thrown: unknown): FastifyReply {
  const fromMultipart = multipartError((thrown as { code?: string } | null)?.code);
  const error = fromMultipart ?? toOtpdError(thrown);
  if (error.status >= 500) request.log.error({ err: error.cause ?? thrown, code: error.code }, 'request failed');
  if (error.retryAfter !== undefined) reply.header('Retry-After', String(error.retryAfter));

  let status = error.status;
  let message = error.message;
  let data: unknown;
  switch (error.code) {
    case 'UNAUTHORIZED':
      reply.header('WWW-Authenticate', 'Basic realm="otpd"');
      break;
    case 'NOT_FOUND':
      // otpgateway answers an unknown id with 400 and this exact message.
      status = 400;
      message = 'the OTP does not exist';
      break;
    case 'UNSUPPORTED_MEDIA_TYPE':
      message = 'send the body as multipart/form-data, application/x-www-form-urlencoded or application/json';
      break;
    case 'VALIDATION': {
      // A rule broken inside a service names otpd's field; say it in the dialect's terms.
      const field = error.errors?.[0]?.field;
      if (field === 'channel') message = `invalid \`provider\`: ${error.errors![0]!.message}`;
      else if (field === 'to' && !message.startsWith('invalid `to`')) message = `invalid \`to\` address: ${error.errors![0]!.message}`;
      break;
    }
    case 'RATE_LIMITED':
      // otpgateway's locked-id answer carries {ttl_seconds, attempts, max_attempts}; other limits carry none.
      if (error.extensions && 'ttl_seconds' in error.extensions) data = error.extensions;
      break;
    case 'INTERNAL':
    case 'CONFIG':
      message = 'internal server error';
      break;
  }
  const body: Envelope = { status: 'error', message };
  if (data !== undefined) body.data = data;
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}
