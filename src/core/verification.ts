import type { Channel } from './destination.js';

/**
 * The verification state machine, as pure functions over a record. The SQLite store applies them inside
 * its write transaction; the Redis store's Lua scripts mirror them line for line; the shared contract
 * tests hold both to the same behaviour.
 *
 *   pending ──right code──▶ approved
 *      │ ├──wrong code, attempts reach max──▶ max_attempts_reached
 *      │ ├──now ≥ expiresAt──▶ expired
 *      │ ├──cancel, or superseded by a new create──▶ canceled
 *      │ └──every provider failed──▶ failed
 */
export const VERIFICATION_STATUSES = ['pending', 'approved', 'canceled', 'expired', 'max_attempts_reached', 'failed'] as const;
export type VerificationStatus = (typeof VERIFICATION_STATUSES)[number];

/** Delivery status values everywhere (decisions 11). */
export const DELIVERY_STATUSES = ['queued', 'sent', 'delivered', 'undelivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface VerificationRecord {
  id: string;
  appId: string;
  to: string;
  channel: Channel;
  status: VerificationStatus;
  /** HMAC-SHA256 of the current code, bound to this verification id (standards O3). */
  codeHash: string;
  /** Key id of the keyring entry the hash was made with. */
  codeKid: string;
  /** Digits of the code, kept so a resend issues a code of the same length. */
  codeLength: number;
  attempts: number;
  maxAttempts: number;
  /** Sends so far, the first one included (decisions 1). */
  sends: number;
  locale: string | null;
  metadata: Record<string, unknown> | null;
  /** Epoch milliseconds. */
  expiresAt: number;
  createdAt: number;
  updatedAt: number;
  lastSentAt: number;
  deliveryStatus: DeliveryStatus;
  deliveryProvider: string | null;
  providerMessageId: string | null;
  failureReason: string | null;
}

export type CheckOutcome = 'approved' | 'wrong' | 'expired' | 'locked' | 'not_pending';

export interface CheckDecision {
  outcome: CheckOutcome;
  /** The fields that change, empty when nothing does. */
  changes: Partial<Pick<VerificationRecord, 'status' | 'attempts' | 'updatedAt'>>;
}

export function isExpired(record: VerificationRecord, now: number): boolean {
  return now >= record.expiresAt;
}

/**
 * One check of a code. `codeMatches` comes from a constant-time comparison of keyed hashes.
 * Order matters: a finished verification never changes; an expired one expires before the code is looked
 * at; a locked one rejects even the right code (NIST 800-63B 5.2.2).
 */
export function decideCheck(record: VerificationRecord, codeMatches: boolean, now: number): CheckDecision {
  if (record.status !== 'pending') return { outcome: 'not_pending', changes: {} };
  if (isExpired(record, now)) return { outcome: 'expired', changes: { status: 'expired', updatedAt: now } };
  if (record.attempts >= record.maxAttempts) return { outcome: 'locked', changes: { status: 'max_attempts_reached', updatedAt: now } };
  if (codeMatches) return { outcome: 'approved', changes: { status: 'approved', updatedAt: now } };
  const attempts = record.attempts + 1;
  return {
    outcome: 'wrong',
    changes: { attempts, status: attempts >= record.maxAttempts ? 'max_attempts_reached' : 'pending', updatedAt: now },
  };
}

export interface ResendPolicy {
  maxSends: number;
  cooldownMs: number;
  ttlMs: number;
}

export type ResendDecision =
  | { ok: true; changes: Pick<VerificationRecord, 'sends' | 'expiresAt' | 'lastSentAt' | 'updatedAt' | 'deliveryStatus'> }
  | { ok: false; reason: 'not_pending' | 'expired' | 'max_sends' | 'cooldown'; retryAfterMs?: number; changes: Partial<VerificationRecord> };

/** Resend issues a new code and keeps the attempt count (decisions 1, NIST 800-63B-4). */
export function decideResend(record: VerificationRecord, policy: ResendPolicy, now: number): ResendDecision {
  if (record.status !== 'pending') return { ok: false, reason: 'not_pending', changes: {} };
  if (isExpired(record, now)) return { ok: false, reason: 'expired', changes: { status: 'expired', updatedAt: now } };
  if (record.sends >= policy.maxSends) return { ok: false, reason: 'max_sends', retryAfterMs: Math.max(0, record.expiresAt - now), changes: {} };
  const wait = record.lastSentAt + policy.cooldownMs - now;
  if (wait > 0) return { ok: false, reason: 'cooldown', retryAfterMs: wait, changes: {} };
  return {
    ok: true,
    changes: { sends: record.sends + 1, expiresAt: now + policy.ttlMs, lastSentAt: now, updatedAt: now, deliveryStatus: 'queued' },
  };
}

export type CancelDecision = { ok: true; changes: Pick<VerificationRecord, 'status' | 'updatedAt'> } | { ok: false; changes: Partial<VerificationRecord> };

export function decideCancel(record: VerificationRecord, now: number): CancelDecision {
  if (record.status !== 'pending') return { ok: false, changes: {} };
  if (isExpired(record, now)) return { ok: false, changes: { status: 'expired', updatedAt: now } };
  return { ok: true, changes: { status: 'canceled', updatedAt: now } };
}

/**
 * A new create for a destination with a pending verification cancels that one and carries its failed
 * attempts over (decisions 2), so creating again never resets the count.
 */
export function attemptsCarriedFrom(previous: VerificationRecord | undefined, now: number): number {
  if (!previous || previous.status !== 'pending' || isExpired(previous, now)) return 0;
  return previous.attempts;
}
