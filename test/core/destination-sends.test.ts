import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideSend,
  destinationExpiresAt,
  NO_DESTINATION_STATE,
  refundSend,
  restartCooldown,
  sendAdmissionFrom,
  type DestinationState,
  type SendRule,
} from '../../src/core/destination-sends.js';

const W = 600_000;
const T = 100 * W;
const rule: SendRule = { cooldownMs: 30_000, window: { max: 2, windowMs: W } };

describe("a destination's send rules", () => {
  it('checks the cooldown first: a create inside it is refused and counts nothing', () => {
    const first = decideSend(NO_DESTINATION_STATE, rule, T);
    assert.deepEqual(first.admission, { allowed: true, cooldownUntil: T + 30_000 });
    assert.deepEqual(first.state, { cooldownUntil: T + 30_000, sends: { windowStart: T, current: 1, previous: 0 } });
    const inside = decideSend(first.state, rule, T + 10_000);
    assert.deepEqual(inside.admission, { allowed: false, limit: 'destination-cooldown', retryAfterMs: 20_000 });
    assert.equal(inside.state, first.state);
  });
  it('then the window; a resend (no cooldown) is counted but neither checks nor moves the cooldown', () => {
    const sent = decideSend(NO_DESTINATION_STATE, rule, T).state;
    const resend = decideSend(sent, { ...rule, cooldownMs: 0 }, T + 1);
    assert.deepEqual(resend.admission, { allowed: true, cooldownUntil: 0 });
    assert.deepEqual(resend.state, { cooldownUntil: T + 30_000, sends: { windowStart: T, current: 2, previous: 0 } });
    const third = decideSend(resend.state, rule, T + 40_000);
    assert.equal(third.admission.allowed, false);
    assert.equal(third.admission.allowed || third.admission.limit, 'sends-per-destination');
  });
  it('a rule without a window leaves the counts alone', () => {
    const state: DestinationState = { cooldownUntil: 0, sends: { windowStart: T, current: 7, previous: 3 } };
    assert.deepEqual(decideSend(state, { cooldownMs: 1_000, window: null }, T).state.sends, state.sends);
  });
  it('a refund releases only the cooldown it started, and never counts below zero', () => {
    const { state, admission } = decideSend(NO_DESTINATION_STATE, rule, T);
    assert.ok(admission.allowed);
    assert.deepEqual(refundSend(state, rule, admission.cooldownUntil, T + 1), emptyWindowAt(T));
    const restarted = restartCooldown(state, 30_000, T + 5);
    assert.equal(refundSend(restarted, rule, admission.cooldownUntil, T + 6).cooldownUntil, T + 30_005);
    assert.equal(refundSend(refundSend(state, rule, 0, T), rule, 0, T).sends.current, 0);
  });
  it('a restart never shortens the cooldown', () => {
    const state = restartCooldown(NO_DESTINATION_STATE, 20_000, T);
    assert.equal(state.cooldownUntil, T + 20_000);
    assert.equal(restartCooldown(state, 1_000, T + 1).cooldownUntil, T + 20_000);
  });
  it('the state lasts until the cooldown is over and the counts have rolled out', () => {
    const { state } = decideSend(NO_DESTINATION_STATE, rule, T + 5);
    assert.equal(destinationExpiresAt(state, rule), T + 2 * W);
    assert.equal(destinationExpiresAt(state, { cooldownMs: 30_000, window: null }), T + 30_005);
    assert.equal(destinationExpiresAt({ ...state, cooldownUntil: T + 3 * W }, rule), T + 3 * W);
  });
  it("a backend's own verdict stands, with the same answer as deciding here when they agree", () => {
    const { state } = decideSend(NO_DESTINATION_STATE, rule, T);
    assert.deepEqual(sendAdmissionFrom(false, state, rule, T + 1), decideSend(state, rule, T + 1).admission);
    assert.deepEqual(sendAdmissionFrom(true, NO_DESTINATION_STATE, rule, T), { allowed: true, cooldownUntil: T + 30_000 });
    assert.deepEqual(sendAdmissionFrom(true, state, rule, T + 1), { allowed: true, cooldownUntil: T + 30_001 });
    assert.equal(sendAdmissionFrom(false, NO_DESTINATION_STATE, rule, T).allowed, false);
  });
});

/** What a refunded first send leaves: no cooldown, and the window rolled to `now` with nothing in it. */
function emptyWindowAt(now: number): DestinationState {
  return { cooldownUntil: 0, sends: { windowStart: Math.floor(now / W) * W, current: 0, previous: 0 } };
}
