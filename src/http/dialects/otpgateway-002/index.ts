import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { OtpdError } from '../../../errors.js';
import type { Services } from '../../../services/index.js';
import { principalOf } from '../../auth.js';
import { contextOf } from '../../request-context.js';
import { authenticate } from './auth.js';
import { sendError, success } from './envelope.js';
import { checkFields, clientIdOf, fieldError, putFields } from './fields.js';
import { hostedPageUrl, otpData } from './view.js';

export interface Otpgateway002Options {
  services: Services;
  /** Base of the hosted page links (`url`). */
  publicUrl: () => string;
}

/** Form bodies are a handful of short text fields; anything bigger is refused before it is buffered. */
const FORM_LIMITS = { fields: 20, parts: 20, files: 0, fieldNameSize: 100, fieldSize: 8 * 1024, headerPairs: 100 };
const FORM_BODY_LIMIT = 32 * 1024;

/** Reads a multipart/form-data body into a flat object of text fields (files are refused). */
async function multipartFields(request: FastifyRequest): Promise<void> {
  if (!request.isMultipart()) return;
  const body: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  try {
    for await (const part of request.parts({ limits: FORM_LIMITS })) {
      if (part.type !== 'field') throw fieldError(part.fieldname, 'file uploads are not accepted: send text fields only');
      if (part.valueTruncated) throw fieldError(part.fieldname, `\`${part.fieldname}\` must be at most ${FORM_LIMITS.fieldSize} bytes`);
      if (part.fieldname === '') continue;
      const value = String(part.value);
      const previous = body[part.fieldname];
      body[part.fieldname] = previous === undefined ? value : ([] as string[]).concat(previous, value);
    }
  } catch (error) {
    if (error instanceof OtpdError || (error as { code?: string }).code?.startsWith('FST_')) throw error;
    // busboy reports a truncated or garbled body ("Unexpected end of multipart data") without a code.
    throw new OtpdError('VALIDATION', 'the multipart/form-data body is malformed', { errors: [{ field: 'body', message: 'is malformed multipart/form-data' }], cause: error });
  }
  request.body = body;
}

function idParam(request: FastifyRequest): string {
  return clientIdOf((request.params as { id: string }).id);
}

/**
 * Seed 002: the otp.plus flavour of knadh/otpgateway under `/api` (docs/dialects.md, "Seed 002").
 * Encapsulated: its body parsers, error envelope and authentication apply to these routes only.
 */
const otpgateway002: FastifyPluginAsync<Otpgateway002Options> = async (app, { services, publicUrl }) => {
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new OtpdError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));
  app.removeContentTypeParser('text/plain');
  await app.register(formbody, { bodyLimit: FORM_BODY_LIMIT });
  await app.register(multipart, { limits: FORM_LIMITS });
  app.addHook('preValidation', multipartFields);

  // Stock otpgateway's health check: unauthenticated, `{"status":"success","data":"OK"}` or a 503.
  app.get('/health', async (_request, reply) => {
    try {
      await services.health();
      return reply.send(success('OK'));
    } catch {
      return reply.code(503).send({ status: 'error', message: 'unable to reach store' });
    }
  });

  await app.register(async (api) => {
    api.addHook('onRequest', authenticate(services));
    const named = services.namedVerifications;

    api.get('/providers', async (request) => success(principalOf(request).app.settings.channels));

    // Create (and send) a verification under the client's id.
    api.put('/otp/:id', async (request) => {
      const { app: tenant } = principalOf(request);
      const id = idParam(request);
      const fields = putFields(request.body);
      if (fields.otp !== undefined && !tenant.settings.callerCodes) {
        throw fieldError('otp', '`otp` cannot be set by the caller for this app: otpd generates every code from a CSPRNG unless the app\'s callerCodes setting is on (`otpd apps update NAME --set callerCodes=true`)');
      }
      const result = await named.put(
        tenant,
        id,
        {
          to: fields.to,
          destination: fields.destination,
          channel: fields.channel,
          provider: fields.provider,
          channelDescription: fields.channelDescription,
          addressDescription: fields.addressDescription,
          extra: fields.extra,
          ...(fields.ttl === undefined ? {} : { ttl: fields.ttl }),
          ...(fields.maxAttempts === undefined ? {} : { maxAttempts: fields.maxAttempts }),
          ...(fields.otp === undefined ? {} : { code: fields.otp }),
        },
        // The message carries the hosted page as a one-tap link (`{link}` in templates).
        { revealCode: tenant.settings.echoCode, link: hostedPageUrl(publicUrl(), tenant.name, id) },
        contextOf(request),
      );
      return success(otpData(result.named, { ...(result.code === undefined ? {} : { code: result.code }), url: hostedPageUrl(publicUrl(), tenant.name, id) }));
    });

    // Check a code: 200 verified, 400 `Incorrect OTP`, 429 `error checking OTP.` once it takes no more codes.
    api.post('/otp/:id', async (request, reply) => {
      const { app: tenant } = principalOf(request);
      const id = idParam(request);
      const { otp, keep } = checkFields(request.body);
      const result = await named.check(tenant, id, otp, { keep }, contextOf(request));
      const data = otpData(result);
      if (result.outcome === 'approved') return success(data);
      if (result.outcome === 'wrong') return reply.code(400).send({ status: 'error', message: 'Incorrect OTP', data });
      return reply.code(429).send({ status: 'error', message: 'error checking OTP.', data });
    });

    // Whether the id is verified: 200 with the data once it is, 400 `OTP not verified.` before (decisions 14).
    api.post('/otp/:id/status', async (request, reply) => {
      const { app: tenant } = principalOf(request);
      const id = idParam(request);
      const found = await named.find(tenant, id);
      if (!found) throw new OtpdError('NOT_FOUND', 'the OTP does not exist');
      if (found.verification.status !== 'approved') return reply.code(400).send({ status: 'error', message: 'OTP not verified.' });
      return success(otpData(found));
    });
  });
};

export default otpgateway002;
