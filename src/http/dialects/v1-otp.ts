import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../services/index.js';
import * as timeWindow from './time-window-001/errors.js';
import { handleTimeWindow } from './time-window-001/handler.js';
import { FIELDS_001 } from './time-window-001/request.js';
import * as userOtp from './user-otp-003/errors.js';
import { handleGenerate, handleVerify } from './user-otp-003/handler.js';
import { FIELDS_003 } from './user-otp-003/request.js';

/**
 * `POST /v1/otp` is claimed by two seeds: 001 (GENERATE/VALIDATE a time-window code) and 003 (send a code
 * to a user's email or phone). The body decides: any seed-001 field selects 001 (decisions 15), else any
 * seed-003 field selects 003. A body that says neither (unparseable, empty) is answered by the seed whose
 * spelling of the path was used: 001 writes `/v1/otp`, 003 writes `/v1/otp/`. `/api/v1/otp/` and the verify paths are 003 only.
 *
 * Registered outside the native `/v1` plugin: these routes are keyless (decisions 8, src/http/dialects/keyless-app.ts).
 */
function answeredBy003(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0]!;
  return path.endsWith('/') || path.startsWith('/api/') || path.includes('/verify');
}

function isTimeWindowRequest(request: FastifyRequest): boolean {
  const body = request.body;
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    if (FIELDS_001.some((field) => field in body)) return true;
    if (FIELDS_003.some((field) => field in body)) return false;
  }
  return !answeredBy003(request);
}

const v1Otp: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  // JSON only: without this, a text/plain body would be parsed and then fail as a confusing rule error.
  app.removeContentTypeParser('text/plain');

  // Reached only by errors before a handler ran (Content-Type, JSON syntax, body size); handlers answer their own.
  app.setErrorHandler((error, request, reply: FastifyReply) =>
    answeredBy003(request)
      ? userOtp.sendFailure(request, reply, userOtp.failureFromError(error), error)
      : timeWindow.sendFailure(request, reply, timeWindow.failureFromError(error), undefined, error),
  );

  const dispatch = (request: FastifyRequest, reply: FastifyReply) =>
    isTimeWindowRequest(request)
      ? handleTimeWindow(services, request, reply, request.body)
      : handleGenerate(services, request, reply, request.body);
  const generate = (request: FastifyRequest, reply: FastifyReply) => handleGenerate(services, request, reply, request.body);
  const verify = (request: FastifyRequest, reply: FastifyReply) => handleVerify(services, request, reply);

  app.post('/v1/otp', dispatch);
  app.post('/v1/otp/', dispatch);
  app.post('/api/v1/otp', generate);
  app.post('/api/v1/otp/', generate);
  for (const path of ['/v1/otp/verify', '/v1/otp/verify/', '/api/v1/otp/verify', '/api/v1/otp/verify/']) app.post(path, verify);
};

export default v1Otp;
