import type { FastifyReply, FastifyRequest } from 'fastify';
import { toOtpdError } from '../../problem.js';

/**
 * Seed 003's error body, `{"success": false, "message": "field: rule"}` (decisions 16): 400 for anything
 * the caller can fix (a malformed body, a wrong or missing Content-Type, a rule, a wrong code, a send
 * limit with `Retry-After`), 401 for an unknown API key or keyless access switched off, 500 otherwise
 * with a message that tells nothing of the server's insides.
 */
export class UserOtpFailure {
  constructor(
    readonly message: string,
    readonly status = 400,
    readonly retryAfter?: number,
  ) {}
}

export function failureFromError(thrown: unknown): UserOtpFailure {
  if (thrown instanceof UserOtpFailure) return thrown;
  const error = toOtpdError(thrown);
  switch (error.code) {
    case 'VALIDATION': {
      // Service rules already read "field: rule"; a body fastify could not parse reads "body: ...".
      const message = /^[\w.-]+: /.test(error.message) ? error.message : `body: ${error.message}`;
      return new UserOtpFailure(message);
    }
    case 'UNSUPPORTED_MEDIA_TYPE':
      return new UserOtpFailure('Content-Type: must be application/json');
    case 'PAYLOAD_TOO_LARGE':
      return new UserOtpFailure('body: must be at most 64 KiB');
    case 'UNAUTHORIZED':
      return new UserOtpFailure(`Authorization: ${error.message}`, 401);
    case 'QUOTA_EXCEEDED':
      return new UserOtpFailure(`Authorization: ${error.message}`, 400, error.retryAfter);
    case 'RESEND_COOLDOWN':
      return new UserOtpFailure(`userId: an OTP was sent moments ago; wait ${error.retryAfter ?? 1} s before requesting another`, 400, error.retryAfter);
    case 'MAX_SENDS':
      return new UserOtpFailure(`userId: too many OTPs were requested; try again in ${error.retryAfter ?? 60} s`, 400, error.retryAfter);
    default:
      return new UserOtpFailure('An error occured processing the request', 500);
  }
}

export function sendFailure(request: FastifyRequest, reply: FastifyReply, failed: UserOtpFailure, cause?: unknown): FastifyReply {
  if (failed.status >= 500) request.log.error({ err: cause }, 'seed-003 request failed');
  if (failed.retryAfter !== undefined) reply.header('Retry-After', String(failed.retryAfter));
  return reply.code(failed.status).send({ success: false, message: failed.message });
}
