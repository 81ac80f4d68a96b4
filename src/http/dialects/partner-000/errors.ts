import type { FastifyReply, FastifyRequest } from 'fastify';
import { toOtpdError } from '../../problem.js';
import type { PartnerRefusal } from '../../../services/partner.js';

/**
 * Seed 000's answers: `{"ErrorCode", "ErrorDescription", "Data"?}`. ErrorCode 0 is success (HTTP 200); every
 * other ErrorCode is five digits whose first three are the HTTP status (decisions 17: 42201 → 422).
 * docs/dialects.md lists them all.
 */
export class PartnerFailure {
  constructor(
    readonly errorCode: number,
    readonly description: string,
    readonly retryAfterMs?: number,
  ) {}

  get status(): number {
    return Math.floor(this.errorCode / 100);
  }
}

const REFUSALS: Record<PartnerRefusal, [number, string]> = {
  bad_signature: [40101, 'Invalid Signature'],
  stale_timestamp: [40102, 'Timestamp is more than 300 seconds away from the server time'],
  replayed: [40103, 'Signature already used; sign the request again with a new Timestamp'],
  bad_credentials: [40104, 'Invalid PartnerID or EncryptKey'],
  token_mismatch: [40300, 'The partner token was issued to another PartnerID'],
  helper_disabled: [40301, 'The partner signature helper is disabled for this partner'],
  unknown_subject: [40401, 'GetPlusID is not registered'],
  quota: [42201, 'Maximum OTP reach'],
  no_phone: [42202, 'GetPlusID has no registered phone number'],
  sms_disabled: [42206, 'This partner cannot send SMS: sms is not among its channels'],
  incorrect: [42203, 'OTP is incorrect'],
  not_pending: [42204, 'No pending OTP for this GetPlusID, or it has expired'],
  locked: [42205, 'Too many wrong OTPs; request a new OTP'],
};

export function refusalFailure(reason: PartnerRefusal, retryAfterMs?: number): PartnerFailure {
  const [code, description] = REFUSALS[reason];
  return new PartnerFailure(code, description, retryAfterMs);
}

export const missingToken = () => new PartnerFailure(40100, 'Partner token is missing, invalid or expired: send "Authorization: Bearer TOKEN" from /security/v1/201904/oauth/token');
export const badField = (field: string, rule: string) => new PartnerFailure(40001, `${field}: ${rule}`);

export function failureFromError(thrown: unknown): PartnerFailure {
  if (thrown instanceof PartnerFailure) return thrown;
  const error = toOtpdError(thrown);
  switch (error.code) {
    case 'VALIDATION':
      // The app's policy refusing the subject's phone (a country outside allowedCountries) …
      if (/^to: /.test(error.message)) return new PartnerFailure(42207, `The registered phone cannot be sent to: ${error.message.slice(4)}`);
      // … or a body fastify could not parse.
      return new PartnerFailure(40002, /^[\w.-]+: /.test(error.message) ? error.message : `body: ${error.message}`);
    case 'RATE_LIMITED':
      // The app's send limits and SMS pumping guard (destinationCooldown, per-destination limits, spend cap).
      return new PartnerFailure(42901, `Too many OTPs: ${error.message}`, error.retryAfter === undefined ? undefined : error.retryAfter * 1000);
    case 'UNSUPPORTED_MEDIA_TYPE':
      return new PartnerFailure(41500, 'Content-Type: must be application/json');
    case 'PAYLOAD_TOO_LARGE':
      return new PartnerFailure(41300, 'body: must be at most 64 KiB');
    case 'STORE_UNAVAILABLE':
      return new PartnerFailure(50300, 'Service unavailable; retry shortly', 1_000);
    default:
      return new PartnerFailure(50000, 'Internal server error');
  }
}

export function sendFailure(request: FastifyRequest, reply: FastifyReply, failed: PartnerFailure, cause?: unknown): FastifyReply {
  if (failed.status >= 500) request.log.error({ err: cause, errorCode: failed.errorCode }, 'seed-000 request failed');
  if (failed.retryAfterMs !== undefined) reply.header('Retry-After', String(Math.max(1, Math.ceil(failed.retryAfterMs / 1000))));
  if (failed.errorCode === 40100) reply.header('WWW-Authenticate', 'Bearer realm="otpd"');
  return reply.code(failed.status).send({ ErrorCode: failed.errorCode, ErrorDescription: failed.description });
}
