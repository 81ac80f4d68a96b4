import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attemptsCarriedFrom, decideCancel, decideCheck, decideResend, type VerificationRecord } from '../../src/core/verification.js';

const T0 = 1_000_000;
function record(overrides: Partial<VerificationRecord> = {}): VerificationRecord {
  return {
    id: 've_x', appId: 'app_x', to: '+15555550100', channel: 'sms', status: 'pending', codeHash: 'h', codeKid: 'k', codeLength: 6,
    attempts: 0, maxAttempts: 3, sends: 1, locale: null, metadata: null, expiresAt: T0 + 600_000, createdAt: T0, updatedAt: T0,
    lastSentAt: T0, deliveryStatus: 'queued', deliveryProvider: null, providerMessageId: null, failureReason: null, ...overrides,
  };
}

describe('verification state machine', () => {
  it('approves a matching code while pending and unexpired', () => {
    assert.deepEqual(decideCheck(record(), true, T0 + 1), { outcome: 'approved', changes: { status: 'approved', updatedAt: T0 + 1 } });
  });
  it('counts a wrong code and locks when attempts reach the maximum', () => {
    assert.deepEqual(decideCheck(record({ attempts: 1 }), false, T0).changes, { attempts: 2, status: 'pending', updatedAt: T0 });
    assert.deepEqual(decideCheck(record({ attempts: 2 }), false, T0).changes, { attempts: 3, status: 'max_attempts_reached', updatedAt: T0 });
  });
  it('O2: expires at expiresAt, before looking at the code', () => {
    assert.equal(decideCheck(record(), true, T0 + 600_000).outcome, 'expired');
    assert.equal(decideCheck(record(), true, T0 + 599_999).outcome, 'approved');
  });
  it('T1: a locked verification rejects the right code', () => {
    assert.equal(decideCheck(record({ attempts: 3 }), true, T0).outcome, 'locked');
    assert.equal(decideCheck(record({ status: 'max_attempts_reached', attempts: 3 }), true, T0).outcome, 'not_pending');
  });
  it('never changes a finished verification', () => {
    for (const status of ['approved', 'canceled', 'expired', 'failed'] as const) {
      assert.deepEqual(decideCheck(record({ status }), true, T0), { outcome: 'not_pending', changes: {} });
    }
  });
  it('T3: resend keeps attempts, counts sends, moves expiry, honours cooldown and max sends', () => {
    const policy = { maxSends: 2, cooldownMs: 30_000, ttlMs: 600_000 };
    const early = decideResend(record({ attempts: 2 }), policy, T0 + 10_000);
    assert.deepEqual(early, { ok: false, reason: 'cooldown', retryAfterMs: 20_000, changes: {} });
    const ok = decideResend(record({ attempts: 2 }), policy, T0 + 30_000);
    assert.ok(ok.ok);
    assert.deepEqual(ok.changes, { sends: 2, expiresAt: T0 + 630_000, lastSentAt: T0 + 30_000, updatedAt: T0 + 30_000, deliveryStatus: 'queued' });
    assert.equal(decideResend(record({ sends: 2 }), policy, T0 + 60_000).ok, false);
    assert.equal(decideResend(record({ status: 'approved' }), policy, T0 + 60_000).ok, false);
  });
  it('cancels only a pending verification', () => {
    assert.equal(decideCancel(record(), T0).ok, true);
    assert.equal(decideCancel(record({ status: 'canceled' }), T0).ok, false);
    assert.deepEqual(decideCancel(record(), T0 + 600_000), { ok: false, changes: { status: 'expired', updatedAt: T0 + 600_000 } });
  });
  it('carries attempts only from a live pending verification (decisions 2)', () => {
    assert.equal(attemptsCarriedFrom(record({ attempts: 2 }), T0), 2);
    assert.equal(attemptsCarriedFrom(record({ attempts: 2 }), T0 + 600_000), 0);
    assert.equal(attemptsCarriedFrom(record({ attempts: 2, status: 'approved' }), T0), 0);
    assert.equal(attemptsCarriedFrom(undefined, T0), 0);
  });
});
