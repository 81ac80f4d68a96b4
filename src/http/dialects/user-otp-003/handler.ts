import type { FastifyReply, FastifyRequest } from 'fastify';
import { isOtpdError } from '../../../errors.js';
import type { Services } from '../../../services/index.js';
import { contextOf } from '../../request-context.js';
import { keylessApp } from '../keyless-app.js';
import { failureFromError, sendFailure, UserOtpFailure } from './errors.js';
import { asObject, destinationOf, otpOf, userIdOf } from './request.js';

/**
 * A send or check refused by the app's policy (rate limits, the pumping guard, a country outside the
 * allow-list, a channel not enabled) names the request's field, not the service's `to`/`channel`.
 */
function onField(error: unknown, field: string): unknown {
  if (isOtpdError(error, 'RATE_LIMITED')) return new UserOtpFailure(`${field}: ${error.message}`, 400, error.retryAfter);
  if (isOtpdError(error, 'VALIDATION') && /^(to|channel): /.test(error.message)) return new UserOtpFailure(`${field}: ${error.message.replace(/^(to|channel): /, '')}`);
  return error;
}

/** `POST /v1/otp/` (and `/api/v1/otp/`): sends a code to the given email address or phone number. */
export async function handleGenerate(services: Services, request: FastifyRequest, reply: FastifyReply, body: unknown): Promise<FastifyReply> {
  try {
    const app = await keylessApp(services, request);
    const fields = asObject(body);
    const userId = userIdOf(fields);
    const { field, to } = destinationOf(fields);
    try {
      await services.userOtp.send(app, userId, to, contextOf(request));
    } catch (error) {
      throw onField(error, field);
    }
    return reply.code(200).send({ success: true, data: 'OTP Generated' });
  } catch (error) {
    return sendFailure(request, reply, failureFromError(error), error);
  }
}

/**
 * `POST /v1/otp/verify` `{userId, otp}`: not in the seed, which documents only the generate; otpd adds it
 * so the dialect is usable end to end. An unknown user id answers exactly like a wrong code (decisions 13).
 */
export async function handleVerify(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  try {
    const app = await keylessApp(services, request);
    const fields = asObject(request.body);
    const userId = userIdOf(fields);
    const otp = otpOf(fields);
    const verdict = await services.userOtp.verify(app, userId, otp, contextOf(request)).catch((error: unknown) => {
      throw onField(error, 'otp');
    });
    if (verdict === 'incorrect') throw new UserOtpFailure('otp: is incorrect or has expired');
    if (verdict === 'locked') throw new UserOtpFailure('otp: too many wrong attempts; request a new OTP');
    return reply.code(200).send({ success: true, data: 'OTP Verified' });
  } catch (error) {
    return sendFailure(request, reply, failureFromError(error), error);
  }
}
