import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { CHANNELS } from '../../core/destination.js';
import type { VerificationRecord } from '../../core/verification.js';
import type { Services } from '../../services/index.js';
import { principalOf } from '../auth.js';
import { CheckView, verificationView, VerificationView } from './views.js';

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const Code = Type.String({ minLength: 1, maxLength: 64, description: 'the code the person entered' });

const CreateBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 320, description: 'E.164 phone number (+ and 8-15 digits) or email address' }),
    channel: Type.Optional(Type.Enum(CHANNELS, { description: 'default: email for an address, else sms' })),
    codeLength: Type.Optional(Type.Integer({ minimum: 4, maximum: 10 })),
    ttl: Type.Optional(Type.Integer({ minimum: 30, maximum: 86_400, description: 'seconds' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    locale: Type.Optional(Type.String({ pattern: '^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$', maxLength: 35 })),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { description: 'at most 4 KiB of JSON, returned as given' })),
  },
  { additionalProperties: false },
);

/** Native verification routes: each one translates HTTP to one service call and back. */
const verifications: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const service = services.verifications;
  const checkResponse = (result: { verification: VerificationRecord; valid: boolean }) => ({ ...verificationView(result.verification), valid: result.valid });

  app.post(
    '/verifications',
    {
      schema: {
        body: CreateBody,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String()) }),
        response: { 201: VerificationView },
      },
    },
    async (request, reply) => {
      const { app: tenant } = principalOf(request);
      const idempotencyKey = request.headers['idempotency-key'];
      if (typeof idempotencyKey === 'string') {
        const stored = await service.createIdempotent(tenant, request.body, idempotencyKey);
        return reply.code(stored.statusCode as 201).send(verificationView(stored.body as VerificationRecord));
      }
      return reply.code(201).send(verificationView(await service.create(tenant, request.body)));
    },
  );

  app.get('/verifications/:id', { schema: { params: Id, response: { 200: VerificationView } } }, async (request) =>
    verificationView(await service.get(principalOf(request).app, request.params.id)),
  );

  app.post(
    '/verifications/check',
    { schema: { body: Type.Object({ to: Type.String({ minLength: 1, maxLength: 320 }), code: Code }, { additionalProperties: false }), response: { 200: CheckView } } },
    async (request) => checkResponse(await service.checkByDestination(principalOf(request).app, request.body.to, request.body.code)),
  );

  app.post(
    '/verifications/:id/check',
    { schema: { params: Id, body: Type.Object({ code: Code }, { additionalProperties: false }), response: { 200: CheckView } } },
    async (request) => checkResponse(await service.check(principalOf(request).app, request.params.id, request.body.code)),
  );

  app.post('/verifications/:id/resend', { schema: { params: Id, response: { 200: VerificationView } } }, async (request) =>
    verificationView(await service.resend(principalOf(request).app, request.params.id)),
  );

  app.post('/verifications/:id/cancel', { schema: { params: Id, response: { 200: VerificationView } } }, async (request) =>
    verificationView(await service.cancel(principalOf(request).app, request.params.id)),
  );
};

export default verifications;
