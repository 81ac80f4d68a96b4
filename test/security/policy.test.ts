import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callingCodeOf, convertsTooPoorly, countryAllowed, countryOf, DEFAULT_CONVERSION_GUARD, longestPrefix, prefixLimitFor, priceMicros } from '../../src/core/pumping.js';
import { callerBuckets, DEFAULT_RATE_LIMITS, limitsForCheck, limitsForCreate, sendRule, type LimitPolicy } from '../../src/core/rate-limits.js';
import { applySettings, defaultSettings, parseSettingAssignment } from '../../src/core/settings.js';
import { decideSliding, slidingRetryAfterMs, type SlidingState } from '../../src/core/sliding-window.js';
import { isOtpdError } from '../../src/errors.js';

/** The pure rules behind O5's defences: sliding windows, which limits apply, settings, pumping rules. */

describe('sliding window', () => {
  const W = 60_000;
  it('admits up to the limit in one window and never twice the limit across a boundary', () => {
    let state: SlidingState | undefined;
    const start = 10 * W;
    let admitted = 0;
    // 10 hits at the very end of one window, 10 at the very start of the next: a fixed window admits 20.
    for (const now of [...Array(10).fill(start + W - 1), ...Array(10).fill(start + W + 1)] as number[]) {
      const decision = decideSliding(state, 10, W, now);
      if (decision.allowed) admitted++;
      state = decision.state;
    }
    assert.equal(admitted, 10);
  });
  it('computes the wait until the previous window has weighed down enough', () => {
    const state = { windowStart: 0, current: 0, previous: 10 };
    // At t = 30 s the previous window weighs 5; limit 6 needs its weight ≤ 5 - 0: already true.
    assert.equal(decideSliding(state, 6, W, 30_000).allowed, true);
    // Limit 3 needs 10 × (60 − t)/60 ≤ 2 → t ≥ 48 s: 18 s after t = 30 s.
    assert.equal(slidingRetryAfterMs(state, 3, W, 30_000, 1), 18_000);
    assert.equal(decideSliding(state, 3, W, 48_000).allowed, true);
    assert.equal(decideSliding(state, 3, W, 47_999).allowed, false);
  });
  it('forgets everything two windows later and never refunds below zero', () => {
    assert.deepEqual(decideSliding({ windowStart: 0, current: 7, previous: 3 }, 5, W, 2 * W + 5).state, { windowStart: 2 * W, current: 1, previous: 0 });
    assert.equal(decideSliding({ windowStart: 0, current: 1, previous: 0 }, 5, W, 10, -3).state.current, 0);
  });
});

describe('which limits apply', () => {
  const policy: LimitPolicy = {
    rateLimits: { ...DEFAULT_RATE_LIMITS, 'verifications-per-key': { max: 10, windowSeconds: 60 }, 'checks-per-verification': { max: 3, windowSeconds: 60 } },
    rateLimitBuckets: { user_id: { max: 3, windowSeconds: 600 } },
  };
  it('per-IP limits count keyless requests only; per-key limits keyed ones', () => {
    const keyless = limitsForCreate('app', policy, { ip: '203.0.113.1' }, []).map((c) => c.limit);
    assert.deepEqual(keyless, ['verifications-per-ip']);
    const keyed = limitsForCreate('app', policy, { ip: '203.0.113.1', keyId: 'key_1' }, [['user_id', 'u-42']]).map((c) => c.limit);
    assert.deepEqual(keyed, ['verifications-per-key', 'bucket:user_id']);
    assert.deepEqual(limitsForCheck('app', policy, 've_1', { ip: '203.0.113.1' }).map((c) => c.limit), ['checks-per-ip', 'checks-per-verification']);
  });
  it('keys are per app and per subject', () => {
    const [a] = limitsForCreate('app_a', policy, { keyId: 'key_1' }, []);
    const [b] = limitsForCreate('app_b', policy, { keyId: 'key_1' }, []);
    assert.notEqual(a!.key, b!.key);
    assert.equal(a!.windowMs, 60_000);
  });
  it("a destination's rules: its send window always, the cooldown only when given (creates)", () => {
    assert.deepEqual(sendRule(policy, 30_000), { cooldownMs: 30_000, window: { max: 5, windowMs: 600_000 } });
    assert.deepEqual(sendRule(policy, 0), { cooldownMs: 0, window: { max: 5, windowMs: 600_000 } });
    const off: LimitPolicy = { ...policy, rateLimits: { ...policy.rateLimits, 'sends-per-destination': null } };
    assert.deepEqual(sendRule(off, 0), { cooldownMs: 0, window: null });
  });
  it('caller buckets must be defined by the app and be short printable values', () => {
    assert.deepEqual(callerBuckets(policy, { user_id: 42 }), [['user_id', '42']]);
    for (const [given, field] of [[{ device: 'x' }, 'rateLimits.device'], [{ user_id: 'has space' }, 'rateLimits.user_id'], [{ user_id: {} }, 'rateLimits.user_id']] as const) {
      assert.throws(() => callerBuckets(policy, given as Record<string, unknown>), (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === field);
    }
  });
});

describe('abuse-protection settings', () => {
  it('rateLimits merges over the defaults, null switches one off, and bad values name the sub-field', () => {
    const settings = applySettings(defaultSettings(), { rateLimits: { 'checks-per-ip': null, 'checks-per-key': { max: 5, windowSeconds: 60 } } });
    assert.equal(settings.rateLimits['checks-per-ip'], null);
    assert.deepEqual(settings.rateLimits['sends-per-destination'], { max: 5, windowSeconds: 600 });
    for (const [value, field] of [
      [{ 'checks-per-ip': { max: 0, windowSeconds: 60 } }, 'rateLimits.checks-per-ip.max'],
      [{ 'checks-per-ip': { max: 1, windowSeconds: 60, burst: 2 } }, 'rateLimits.checks-per-ip.burst'],
      [{ nope: null }, 'rateLimits.nope'],
      [[1], 'rateLimits'],
    ] as const) {
      assert.throws(() => applySettings(defaultSettings(), { rateLimits: value }), (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === field, field);
    }
  });
  it('prices, caps, prefix limits, countries and the conversion guard validate', () => {
    const settings = applySettings(defaultSettings(), {
      prices: { sms: { '+1': 0.0079, '*': 0.05 } },
      dailySpendCap: { sms: 50 },
      prefixLimits: { '+44': { max: 100, windowSeconds: 3600 } },
      allowedCountries: ['US', 'GB'],
      conversionGuard: { minSends: 50 },
    });
    assert.deepEqual(settings.conversionGuard, { ...DEFAULT_CONVERSION_GUARD, minSends: 50 });
    for (const [key, value, field] of [
      ['prices', { fax: { '*': 1 } }, 'prices.fax'],
      ['prices', { sms: { '44': 1 } }, 'prices.sms.44'],
      ['prices', { sms: { '+44': -1 } }, 'prices.sms.+44'],
      ['dailySpendCap', { sms: 0 }, 'dailySpendCap.sms'],
      ['prefixLimits', { '+4x': { max: 1, windowSeconds: 1 } }, 'prefixLimits.+4x'],
      ['allowedCountries', ['usa'], 'allowedCountries'],
      ['conversionGuard', { minApprovalRate: 2 }, 'conversionGuard.minApprovalRate'],
    ] as const) {
      assert.throws(() => applySettings(defaultSettings(), { [key]: value }), (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === field, field);
    }
  });
  it('the CLI takes objects as JSON and says so when it is not', () => {
    assert.deepEqual(parseSettingAssignment('dailySpendCap={"sms": 20}'), ['dailySpendCap', { sms: 20 }]);
    assert.throws(() => parseSettingAssignment('dailySpendCap=sms:20'), /must be JSON/);
  });
  it('production defaults: conversion guard on, code echo off; development: guard off', () => {
    assert.deepEqual(defaultSettings(true).conversionGuard, DEFAULT_CONVERSION_GUARD);
    assert.equal(defaultSettings(false).conversionGuard, null);
    assert.equal(defaultSettings(true).echoCode, false);
    assert.equal(defaultSettings(true).destinationCooldown, 30);
  });
});

describe('pumping rules', () => {
  it('finds countries, including shared calling codes, and fails closed on unknown ranges', () => {
    assert.equal(countryOf('+12015550123'), 'US');
    assert.equal(countryOf('+12425551234'), 'BS');
    assert.equal(countryOf('+442079460123'), 'GB');
    assert.equal(callingCodeOf('+442079460123'), '+44');
    assert.deepEqual(countryAllowed([], '+8821234567890'), { allowed: true, country: undefined });
    assert.equal(countryAllowed(['US'], '+8821234567890').allowed, false);
    assert.equal(countryAllowed(['US'], '+12425551234').allowed, false, 'the Bahamas share +1 but are not the US');
  });
  it('longest prefix wins; * covers the rest, counted per calling code', () => {
    assert.equal(longestPrefix({ '+4': 1, '+44': 2, '*': 3 }, '+442079460123'), '+44');
    assert.equal(longestPrefix({ '+44': 2, '*': 3 }, '+33612345678'), '*');
    assert.equal(longestPrefix({ '+44': 2 }, '+33612345678'), undefined);
    assert.equal(prefixLimitFor({ '*': { max: 1, windowSeconds: 1 } }, '+33612345678')?.prefix, '+33');
  });
  it('prices in millionths; email is priced by * only', () => {
    const prices = { sms: { '+1': 0.0079, '*': 0.05 }, email: { '*': 0.0001 } };
    assert.equal(priceMicros(prices, 'sms', '+12015550123'), 7_900);
    assert.equal(priceMicros(prices, 'sms', '+442079460123'), 50_000);
    assert.equal(priceMicros(prices, 'email', 'a@example.com'), 100);
    assert.equal(priceMicros(prices, 'voice', '+12015550123'), 0);
  });
  it('judges conversion only with enough sends', () => {
    const guard = DEFAULT_CONVERSION_GUARD;
    assert.equal(convertsTooPoorly(19, 0, guard), false);
    assert.equal(convertsTooPoorly(20, 1, guard), true);
    assert.equal(convertsTooPoorly(20, 2, guard), false);
  });
});
