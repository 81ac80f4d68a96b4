import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { OTP_ALGORITHMS, OTP_TYPES } from '../../core/otp.js';
import { FACTOR_STATUSES, recoveryCodesRemaining, type FactorCheck, type FactorRecord } from '../../services/factors.js';
import type { Services } from '../../services/index.js';
import { principalOf } from '../auth.js';
import { contextOf } from '../request-context.js';
import { isoTime } from './views.js';

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const EnrolBody = Type.Object(
  {
    type: Type.Enum(OTP_TYPES),
    account: Type.String({ minLength: 1, maxLength: 256, description: 'who the factor belongs to, shown in the authenticator app; no ":"' }),
    issuer: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "default: the app's name; no \":\"" })),
    // Only integers here; the factor rules (6 or 8 digits, 30 or 60 s) are checked by core/otp.ts so the
    // message names the rule and its source.
    digits: Type.Optional(Type.Integer({ description: '6 (default) or 8' })),
    period: Type.Optional(Type.Integer({ description: 'TOTP only: 30 (default) or 60 seconds' })),
    algorithm: Type.Optional(Type.Enum(OTP_ALGORITHMS, { description: 'default SHA1' })),
  },
  { additionalProperties: false },
);

/** The public factor object: never the secret, the QR code or any hash. */
export const FactorView = Type.Object(
  {
    id: Type.String(),
    type: Type.Enum(OTP_TYPES),
    status: Type.Enum(FACTOR_STATUSES),
    account: Type.String(),
    issuer: Type.String(),
    algorithm: Type.Enum(OTP_ALGORITHMS),
    digits: Type.Integer(),
    period: Type.Union([Type.Integer(), Type.Null()]),
    recoveryCodesRemaining: Type.Union([Type.Integer(), Type.Null()]),
    lockedUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    verifiedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Factor' },
);
type FactorView = Static<typeof FactorView>;

const EnrolmentView = Type.Object(
  {
    ...FactorView.properties,
    secret: Type.String({ description: 'Base32 without padding; returned only here' }),
    uri: Type.String({ description: 'otpauth:// Key Uri Format' }),
    qr: Type.Object({ png: Type.String({ description: 'plain base64 PNG' }), svg: Type.String() }),
  },
  { $id: 'FactorEnrolment' },
);

const VerifyView = Type.Object(
  {
    valid: Type.Boolean(),
    status: Type.Enum(FACTOR_STATUSES),
    reason: Type.Optional(Type.Enum(['invalid_code', 'code_reused'])),
    recoveryCodesRemaining: Type.Optional(Type.Integer()),
  },
  { $id: 'FactorCheck' },
);

const RecoveryCodesView = Type.Object(
  { factorId: Type.String(), codes: Type.Array(Type.String(), { description: 'each works once; shown only here' }) },
  { $id: 'FactorRecoveryCodes' },
);

const iso = (ms: number | null) => (ms === null ? null : isoTime(ms));

export function factorView(factor: FactorRecord, now = Date.now()): FactorView {
  return {
    id: factor.id,
    type: factor.type,
    status: factor.status,
    account: factor.account,
    issuer: factor.issuer,
    algorithm: factor.algorithm,
    digits: factor.digits,
    period: factor.period,
    recoveryCodesRemaining: recoveryCodesRemaining(factor),
    lockedUntil: factor.lockedUntil !== null && factor.lockedUntil > now ? iso(factor.lockedUntil) : null,
    createdAt: iso(factor.createdAt)!,
    updatedAt: iso(factor.updatedAt)!,
    verifiedAt: iso(factor.verifiedAt),
  };
}

function checkView(check: FactorCheck): Static<typeof VerifyView> {
  const out: Static<typeof VerifyView> = { valid: check.valid, status: check.factor.status };
  if (check.reason) out.reason = check.reason;
  if (check.recoveryCodesRemaining !== undefined) out.recoveryCodesRemaining = check.recoveryCodesRemaining;
  return out;
}

/** Native authenticator-factor routes (TOTP/HOTP): each translates HTTP to one service call and back. */
const factors: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const service = services.factors;

  app.post('/factors', { schema: { body: EnrolBody, response: { 201: EnrolmentView } } }, async (request, reply) => {
    const enrolment = await service.enrol(principalOf(request).app, request.body);
    return reply.code(201).send({
      ...factorView(enrolment.factor),
      secret: enrolment.secret,
      uri: enrolment.uri,
      qr: { png: await service.qrPng(enrolment.uri), svg: await service.qrSvg(enrolment.uri) },
    });
  });

  app.get('/factors/:id', { schema: { params: Id, response: { 200: FactorView } } }, async (request) =>
    factorView(await service.get(principalOf(request).app, request.params.id)),
  );

  app.delete('/factors/:id', { schema: { params: Id } }, async (request, reply) => {
    await service.delete(principalOf(request).app, request.params.id);
    return reply.code(204).send();
  });

  app.post(
    '/factors/:id/verify',
    { schema: { params: Id, body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }), response: { 200: VerifyView } } },
    async (request) => checkView(await service.verify(principalOf(request).app, request.params.id, request.body.code, contextOf(request))),
  );

  app.post('/factors/:id/recovery-codes', { schema: { params: Id, response: { 201: RecoveryCodesView } } }, async (request, reply) => {
    const issued = await service.issueRecoveryCodes(principalOf(request).app, request.params.id);
    return reply.code(201).send({ factorId: issued.factor.id, codes: issued.codes });
  });
};

export default factors;
