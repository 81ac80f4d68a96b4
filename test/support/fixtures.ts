import { newVerificationId, routingTag } from '../../src/core/ids.js';
import type { VerificationRecord } from '../../src/core/verification.js';

/**
 * A pending verification record as the service creates one (id routed by `routingKey`, one send, nothing
 * delivered yet), for tests and benchmarks that talk to a store directly.
 */
export function pendingVerification(routingKey: Buffer, appId: string, to: string, now: number, overrides: Partial<VerificationRecord> = {}): VerificationRecord {
  return {
    id: newVerificationId(routingTag(routingKey, appId, to), now),
    appId,
    to,
    channel: 'sms',
    status: 'pending',
    codeHash: 'hash-right',
    codeKid: 'k1',
    codeLength: 6,
    attempts: 0,
    maxAttempts: 5,
    sends: 1,
    locale: null,
    metadata: null,
    expiresAt: now + 600_000,
    createdAt: now,
    updatedAt: now,
    lastSentAt: now,
    deliveryStatus: 'queued',
    deliveryProvider: null,
    providerMessageId: null,
    failureReason: null,
    ...overrides,
  };
}
