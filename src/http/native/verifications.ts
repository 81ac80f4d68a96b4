import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { CHANNELS } from '../../core/destination.js';
import type { VerificationRecord } from '../../core/verification.js';
import type { Services } from '../../services/index.js';
import { principalOf } from '../auth.js';
import { contextOf } from '../request-context.js';
import { problemResponses } from '../schemas.js';
import { checkView, CheckView, verificationView, VerificationView } from './views.js';

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
    rateLimits: Type.Optional(
      Type.Record(Type.String({ maxLength: 32 }), Type.Union([Type.String({ maxLength: 128 }), Type.Number()]), {
        maxProperties: 20,
        description: 'caller buckets, e.g. {"user_id": "u-42"}: each counts against the app\'s rateLimitBuckets setting of that name (docs/abuse-protection.md)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** A response schema with its OpenAPI description (the copy keeps the TypeBox type for the type provider). */
function described<T extends object>(schema: T, description: string): T {
  return { ...schema, description };
}

const TAGS = ['verifications'];

/*
 * Route schemas: validation, serialization and the OpenAPI document (GET /openapi.json) in one place.
 * Errors every native route shares (401, 403 quota, 500, 503) are added by src/http/openapi.ts; the
 * ones listed here are those this route itself can answer with.
 */
const CreateSchema = {
  tags: TAGS,
  summary: 'Create a verification and send its code',
  description:
    'Generates a code, stores only its keyed hash and hands the message to the app’s delivery provider; the answer comes before the provider has answered (`delivery.status: queued`). A pending verification for the same `to` is canceled and its failed attempts carry over. With `Idempotency-Key`, a repeat within 24 h gets the first answer and sends nothing.',
  body: CreateBody,
  headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ description: '1-255 printable ASCII characters; the same key and body within 24 h replays the first answer' })) }),
  response: {
    201: described(VerificationView, 'the verification; its code is on its way to `to`'),
    ...problemResponses('VALIDATION', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'IDEMPOTENCY_IN_PROGRESS', 'IDEMPOTENCY_MISMATCH', 'RATE_LIMITED'),
  },
};

const GetSchema = {
  tags: TAGS,
  summary: 'Get a verification',
  description: 'Its status, attempts, sends, expiry and delivery status. Never the code. Another app’s ids answer 404 like unknown ones.',
  params: Id,
  response: { 200: described(VerificationView, 'the verification'), ...problemResponses('VALIDATION', 'NOT_FOUND') },
};

const CheckByDestinationSchema = {
  tags: TAGS,
  summary: 'Check a code against the latest pending verification of a destination',
  description: 'For clients that did not keep the id. A wrong code counts as a failed attempt; `valid` says whether the code was right.',
  body: Type.Object({ to: Type.String({ minLength: 1, maxLength: 320 }), code: Code }, { additionalProperties: false }),
  response: {
    200: described(CheckView, '`valid: true` when the code was right (the verification is now approved); `valid: false` otherwise, with `status` and `attempts` telling why'),
    ...problemResponses('VALIDATION', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'NOT_FOUND', 'RATE_LIMITED'),
  },
};

const CheckSchema = {
  tags: TAGS,
  summary: 'Check a code',
  description: 'A wrong code counts as a failed attempt; after `maxAttempts` the verification is locked and even the right code is refused. An expired or finished verification answers `valid: false` with its status.',
  params: Id,
  body: Type.Object({ code: Code }, { additionalProperties: false }),
  response: {
    200: described(CheckView, '`valid: true` when the code was right (the verification is now approved); `valid: false` otherwise, with `status` and `attempts` telling why'),
    ...problemResponses('VALIDATION', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'NOT_FOUND', 'RATE_LIMITED'),
  },
};

const ResendSchema = {
  tags: TAGS,
  summary: 'Send a new code',
  description: 'Issues a new code (the old one stops working), keeps the failed attempts, adds one to `sends` and restarts the expiry. Refused within `resendCooldown` of the last send and after `maxSends` sends (429 with `Retry-After`).',
  params: Id,
  response: { 200: described(VerificationView, 'the verification with its new expiry'), ...problemResponses('VALIDATION', 'NOT_FOUND', 'NOT_PENDING', 'RESEND_COOLDOWN', 'MAX_SENDS', 'RATE_LIMITED') },
};

const CancelSchema = {
  tags: TAGS,
  summary: 'Cancel a verification',
  description: 'A canceled verification accepts no code. Only a pending verification can be canceled (409 otherwise).',
  params: Id,
  response: { 200: described(VerificationView, 'the canceled verification'), ...problemResponses('VALIDATION', 'NOT_FOUND', 'NOT_PENDING') },
};

/** Native verification routes: each one translates HTTP to one service call and back. */
const verifications: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const service = services.verifications;
  // A valid check carries a signed receipt of the approval (docs/audit-and-events.md).
  const checkResponse = async (result: { verification: VerificationRecord; valid: boolean }) => checkView(result.verification, result.valid, result.valid ? await services.receipts.issue(result.verification) : undefined);

  app.post(
    '/verifications',
    // Create bodies are small: 4 KiB of metadata plus a few fields.
    { schema: CreateSchema, bodyLimit: 8 * 1024 },
    async (request, reply) => {
      const { app: tenant } = principalOf(request);
      const idempotencyKey = request.headers['idempotency-key'];
      if (typeof idempotencyKey === 'string') {
        const stored = await service.createIdempotent(tenant, request.body, idempotencyKey, contextOf(request));
        return reply.code(stored.statusCode as 201).send(verificationView(stored.body as VerificationRecord));
      }
      return reply.code(201).send(verificationView(await service.create(tenant, request.body, contextOf(request))));
    },
  );

  app.get('/verifications/:id', { schema: GetSchema }, async (request) =>
    verificationView(await service.get(principalOf(request).app, request.params.id)),
  );

  app.post(
    '/verifications/check',
    { schema: CheckByDestinationSchema, bodyLimit: 1024 },
    async (request) => checkResponse(await service.checkByDestination(principalOf(request).app, request.body.to, request.body.code, contextOf(request))),
  );

  app.post(
    '/verifications/:id/check',
    { schema: CheckSchema, bodyLimit: 1024 },
    async (request) => checkResponse(await service.check(principalOf(request).app, request.params.id, request.body.code, contextOf(request))),
  );

  app.post('/verifications/:id/resend', { schema: ResendSchema }, async (request) =>
    verificationView(await service.resend(principalOf(request).app, request.params.id, contextOf(request))),
  );

  app.post('/verifications/:id/cancel', { schema: CancelSchema }, async (request) =>
    verificationView(await service.cancel(principalOf(request).app, request.params.id, contextOf(request))),
  );
};

export default verifications;
