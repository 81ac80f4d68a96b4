import type { VerificationStatus } from '../core/verification.js';

/**
 * The durable outbox (decisions 3, 20): a message waits here, encrypted, from the moment its verification is
 * accepted until a provider took it (then it is deleted) or every try failed. `Store` includes these
 * operations; each backend makes every one of them atomic.
 *
 * At most one message waits per `reference` (a verification id, or another caller's reference such as a
 * seed-001 time-window code): a resend replaces the waiting message of its verification, whose code no
 * longer works anyway.
 */
export interface OutboxMessage {
  /** otpd's message id (`msg_…`, time-ordered): the encryption context and the providers' idempotency key. */
  id: string;
  appId: string;
  /** The verification id (or other reference) the message belongs to. */
  reference: string;
  /** AES-256-GCM ciphertext of the message (keyring purpose `outbox`, context = `id`). */
  payload: string;
  /**
   * Which send of the verification this is (its `sends` count). `createVerification` and `resendVerification`
   * store the count they actually wrote, so a report about this message can be matched to that send.
   */
  send: number;
  /** When the message may be sent (epoch ms). */
  dueAt: number;
  /** After this the message is worthless (its code has expired); backends may drop it from then on. */
  expiresAt: number;
  /**
   * Set when the writer sends the message itself right after the write (its worker had room): the message
   * is stored as claimed once, by `token` until `until`, exactly as `claimOutbox` would have left it, so the
   * writer needs no claim (a store call, a decryption) before sending. Nobody else gets it before `until`;
   * a writer that died first loses it like any lease, and the next claim counts a second try.
   */
  lease?: { token: string; until: number };
}

/** What the sender of a message needs to know of its verification: is it still waiting for this send? */
export interface OutboxVerificationState {
  status: VerificationStatus;
  sends: number;
}

/** A claimed message: reserved for the claimer until `leaseUntil`, then claimable again. */
export interface OutboxLease extends OutboxMessage {
  /** Claims so far, this one included; a process that died while sending still used up a try. */
  tries: number;
  lastError: string | null;
  /** The claimer's token; only it may renew, reschedule or complete this lease. */
  leaseToken: string;
  leaseUntil: number;
  /**
   * Only for a reference that names a verification (core `isVerificationId`): that verification's stored
   * status and sends, as `getVerification(appId, reference)` would give them, read in the same atomic step
   * as the claim, so the sender needs no store call of its own to skip a canceled, finished or resent
   * verification's message; null when there is no such verification of `appId`. Absent for any other
   * reference. The status is the stored one: an expired code still reads `pending` until something wrote
   * `expired` (the sender checks `expiresAt` itself).
   */
  verification?: OutboxVerificationState | null;
}

export interface OutboxStore {
  /** Adds (or replaces) the waiting message of `message.reference` on its own (no verification is written). */
  enqueueOutbox(message: OutboxMessage, now: number): Promise<void>;
  /**
   * Claims up to `limit` messages whose `dueAt` has come, oldest first, for `leaseMs`: each gets `leaseToken`,
   * one more try, and is not handed to anyone else until the lease runs out. A verification's message comes
   * with the verification's state (`OutboxLease.verification`).
   */
  claimOutbox(now: number, leaseMs: number, limit: number, leaseToken: string): Promise<OutboxLease[]>;
  /** Extends a lease still held; false when it was lost (expired and claimed again, replaced, or gone). */
  renewOutbox(lease: OutboxLease, leaseMs: number, now: number): Promise<boolean>;
  /** Releases a held lease and makes the message due again at `dueAt`, remembering why it failed. */
  rescheduleOutbox(lease: OutboxLease, dueAt: number, lastError: string, now: number): Promise<boolean>;
  /** Deletes (wipes) the message of a held lease: it was sent, or it was given up. */
  completeOutbox(lease: OutboxLease): Promise<boolean>;
}
