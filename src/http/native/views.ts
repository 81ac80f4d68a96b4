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
export type CheckView = Static<typeof CheckView>;

const DAY_MS = 86_400_000;
/** The largest distance from the epoch a Date can hold (ECMA-262 §21.4.1.1). */
const MAX_DATE_MS = 8.64e15;
let cachedDay = Number.NaN;
let cachedDayPrefix = '';

/** `00`…`99` and `000`…`999`, made once: a number turned into text in a busy server misses V8's small cache of such strings. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, value) => String(value).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, value) => String(value).padStart(3, '0'));

/**
 * `new Date(ms).toISOString()`, the same text, at a fraction of its cost (it runs three times for every
 * answer): the date part is made by toISOString once per day, the time of day from the tables above.
 */
export function isoTime(ms: number): string {
  // Fractions, NaN and times a Date cannot hold take the original path (and its RangeError).
  if (!Number.isInteger(ms) || Math.abs(ms) > MAX_DATE_MS) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  if (day !== cachedDay) {
    // `YYYY-MM-DDT` (or an expanded year), from the one function that defines the format.
    cachedDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, -13);
    cachedDay = day;
  }
  const time = ms - day * DAY_MS;
  const seconds = Math.floor(time / 1000);
  return `${cachedDayPrefix}${TWO_DIGITS[Math.floor(seconds / 3600)]}:${TWO_DIGITS[Math.floor(seconds / 60) % 60]}:${TWO_DIGITS[seconds % 60]}.${THREE_DIGITS[time % 1000]}Z`;
}

export function verificationView(record: VerificationRecord): VerificationView {
  return {
    id: record.id,
    status: record.status,
    to: record.to,
    channel: record.channel,
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    sends: record.sends,
    expiresAt: isoTime(record.expiresAt),
    createdAt: isoTime(record.createdAt),
    updatedAt: isoTime(record.updatedAt),
    delivery: { status: record.deliveryStatus, provider: record.deliveryProvider, failureReason: record.failureReason, test: record.deliveryProvider === TEST_PROVIDER },
    locale: record.locale,
    metadata: record.metadata,
  };
}

/** The answer to a check: the verification, whether the code was right and, when it was, the receipt. */
export function checkView(record: VerificationRecord, valid: boolean, receipt: string | undefined): CheckView {
  const view: CheckView = verificationView(record) as CheckView;
  view.valid = valid;
  if (receipt !== undefined) view.receipt = receipt;
  return view;
}
