import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../../services/index.js';
import type { TimeWindowRefusal } from '../../../services/time-window.js';
import { contextOf } from '../../request-context.js';
import { keylessApp } from '../keyless-app.js';
import { failure, failureFromError, isFailure, sendFailure, type TimeWindowFailure } from './errors.js';
import { describeTime, operationOf, parseRequest, type Operation } from './request.js';

/** Each refusal of the service as seed 001 answers it; docs/dialects.md has the same table. */
function refusalFailure(refusal: TimeWindowRefusal, operation: Operation, timeZone: string): TimeWindowFailure {
  const startRule = operation === 'GENERATE' ? 'DR-0003' : 'DR-0004';
  const durationRule = operation === 'GENERATE' ? 'DR-0004' : 'DR-0005';
  switch (refusal.reason) {
    case 'duration_too_long':
      return failure(4004, `${durationRule}: duration must be at most ${refusal.max} seconds (this app's timeWindowMaxDuration)`);
    case 'starts_too_late':
      return failure(3005, `${startRule}: startTime must not be more than ${refusal.maxLeadSeconds} seconds in the future`);
    case 'ended':
      return failure(8003, `startTime: the OTP window ended at ${describeTime(refusal.endMs, timeZone)}; use a new startTime`);
    case 'not_started':
      return failure(8002, 'startTime: the OTP window has not opened yet');
    case 'wrong':
      return failure(8001, 'generatedOtp: the OTP is not valid for this mobile, channel and time window');
    case 'used':
      return failure(8004, 'generatedOtp: this OTP was already verified; a code is accepted once');
    case 'locked':
      return failure(8005, 'generatedOtp: too many wrong OTPs for this mobile and startTime; generate a code for a new window', 429, refusal.retryAfterMs);
    case 'sms_disabled':
      return failure(9001, 'mobile: this app sends time-window codes by SMS (timeWindowSms) but SMS is not among its channels', 422);
    case 'sms_limited':
      return failure(9002, `mobile: ${refusal.detail}`, 429, refusal.retryAfterMs);
    case 'sms_refused':
      return failure(9003, `mobile: ${refusal.detail}`, 422);
  }
}

/**
 * `POST /v1/otp` with a seed-001 body: GENERATE answers the code (where the app's `echoCode` allows; the
 * documented body without `otp` otherwise), VALIDATE answers whether it is right. Every error, thrown or
 * decided, leaves through `sendFailure` in the seed's envelope.
 */
export async function handleTimeWindow(services: Services, request: FastifyRequest, reply: FastifyReply, body: unknown): Promise<FastifyReply> {
  const operation = operationOf(body);
  try {
    const app = await keylessApp(services, request);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return sendFailure(request, reply, failure(3, 'body: must be a JSON object', 400), operation);
    const parsed = parseRequest(body as Record<string, unknown>, app.settings.timeZone);
    if (isFailure(parsed)) return sendFailure(request, reply, parsed, operation);

    if (parsed.operation === 'GENERATE') {
      const outcome = await services.timeWindow.generate(app, parsed.window, contextOf(request));
      if (!outcome.ok) return sendFailure(request, reply, refusalFailure(outcome, 'GENERATE', app.settings.timeZone), operation);
      const answer: { status: number; message: string; otp?: string } = { status: 200, message: 'OTP is successfully generated' };
      if (app.settings.echoCode) answer.otp = outcome.code;
      return reply.code(200).send(answer);
    }
    const outcome = await services.timeWindow.validate(app, parsed.window, parsed.generatedOtp!);
    if (!outcome.ok) return sendFailure(request, reply, refusalFailure(outcome, 'VALIDATE', app.settings.timeZone), operation);
    return reply.code(200).send({ status: 200, message: 'OTP is successfully verified' });
  } catch (error) {
    return sendFailure(request, reply, failureFromError(error), operation, error);
  }
}
