import { Type, type Static } from 'typebox';
import { CHANNELS } from '../../core/destination.js';
import { TEST_PROVIDER } from '../../delivery/test-numbers.js';
import { DELIVERY_STATUSES, VERIFICATION_STATUSES, type VerificationRecord } from '../../core/verification.js';

/** The public verification object. It has no field that could carry the code or its hash. */
export const VerificationView = Type.Object(
  {
    id: Type.String(),
    status: Type.Enum(VERIFICATION_STATUSES),
    to: Type.String(),
    channel: Type.Enum(CHANNELS),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    sends: Type.Integer(),
    expiresAt: Type.String({ format: 'date-time' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    delivery: Type.Object({
      status: Type.Enum(DELIVERY_STATUSES),
      provider: Type.Union([Type.String(), Type.Null()], { description: 'the provider that took the message (channel:provider when the route switched channel); "test" for a test number' }),
      failureReason: Type.Union([Type.String(), Type.Null()], { description: 'why the last try, or the delivery, failed' }),
      test: Type.Boolean({ description: 'a test number: fixed code, nothing sent (docs/delivery.md)' }),
    }),
    locale: Type.Union([Type.String(), Type.Null()]),
    metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { $id: 'Verification' },
);
export type VerificationView = Static<typeof VerificationView>;

export const CheckView = Type.Object(
  {
    ...VerificationView.properties,
    valid: Type.Boolean(),
    receipt: Type.Optional(Type.String({ description: 'only when valid: a compact JWS (EdDSA) stating the approval, verifiable offline with /.well-known/jwks.json (docs/audit-and-events.md)' })),
  },
  { $id: 'VerificationCheck' },
);

export function verificationView(record: VerificationRecord): VerificationView {
  return {
    id: record.id,
    status: record.status,
    to: record.to,
    channel: record.channel,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    sends: record.sends,
    expiresAt: new Date(record.expiresAt).toISOString(),
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
    delivery: { status: record.deliveryStatus, provider: record.deliveryProvider, failureReason: record.failureReason, test: record.deliveryProvider === TEST_PROVIDER },
    locale: record.locale,
    metadata: record.metadata,
  };
}
