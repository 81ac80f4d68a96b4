import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../../services/index.js';
import type { PartnerOutcome } from '../../../services/partner.js';
import type { PartnerPrincipal } from '../../../services/partner-token.js';
import { contextOf } from '../../request-context.js';
import { failureFromError, missingToken, refusalFailure, sendFailure } from './errors.js';
import { fieldsOf, idField, otpField, signedRequestOf } from './fields.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

async function partnerOf(services: Services, request: FastifyRequest): Promise<PartnerPrincipal> {
  const match = BEARER.exec(request.headers.authorization ?? '');
  const principal = match ? await services.partnerTokens.verify(match[1]!) : undefined;
  if (!principal) throw missingToken();
  return principal;
}

function answer(reply: FastifyReply, outcome: PartnerOutcome): FastifyReply {
  if (!outcome.ok) throw refusalFailure(outcome.reason, outcome.retryAfterMs);
  return reply.code(200).send({ ErrorCode: 0, ErrorDescription: '', Data: outcome.data });
}

/**
 * Seed 000's signed calls: the OTP request (`POST` JSON or `GET` query, as the seed shows both), the verify
 * otpd adds (decisions 17), and the development signature helper. The partner token is checked first,
 * then the fields, then the service checks the signature and its freshness, replay and quota, in that order.
 */
const signedRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.setErrorHandler((error, request, reply) => sendFailure(request, reply, failureFromError(error), error));

  const requestOtp = async (request: FastifyRequest, reply: FastifyReply, source: unknown) => {
    const principal = await partnerOf(services, request);
    return answer(reply, await services.partner.requestOtp(principal, signedRequestOf(fieldsOf(source)), contextOf(request)));
  };
  app.post('/security/v1/201904/oauth/otp', (request, reply) => requestOtp(request, reply, request.body));
  app.get('/security/v1/201904/oauth/otp', (request, reply) => requestOtp(request, reply, request.query));

  app.post('/security/v1/201904/oauth/otp/verify', async (request, reply) => {
    const principal = await partnerOf(services, request);
    const fields = fieldsOf(request.body);
    const signed = signedRequestOf(fields);
    return answer(reply, await services.partner.verifyOtp(principal, signed, otpField(fields), contextOf(request)));
  });

  app.get('/mobile/v1/202001/utils/auth/partner-signature', async (request, reply) => {
    const query = fieldsOf(request.query);
    const partnerId = idField(query, 'PartnerID');
    // `+` in an unescaped query value arrives as a space; Base64 never contains one.
    const encryptKey = idField(query, 'EncryptKey').replace(/ /g, '+');
    const getPlusId = idField(query, 'GetPlusID');
    return answer(reply, await services.partner.sign(partnerId, encryptKey, getPlusId));
  });
};

export default signedRoutes;
