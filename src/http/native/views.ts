import { Type, type Static } from 'typebox';
import { CHANNELS } from '../../core/destination.js';
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
      provider: Type.Union([Type.String(), Type.Null()]),
    }),
    locale: Type.Union([Type.String(), Type.Null()]),
    metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { $id: 'Verification' },
);
export type VerificationView = Static<typeof VerificationView>;

export const CheckView = Type.Object({ ...VerificationView.properties, valid: Type.Boolean() }, { $id: 'VerificationCheck' });

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
    delivery: { status: record.deliveryStatus, provider: record.deliveryProvider },
    locale: record.locale,
    metadata: record.metadata,
  };
}
