import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime } from '../../src/http/native/views.js';

const DAY_MS = 86_400_000;

describe('isoTime', () => {
  it('writes exactly what toISOString writes, at the edges of every field', () => {
    const edges = [
      0, 1, 9, 10, 99, 100, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, DAY_MS - 1, DAY_MS, -1, -DAY_MS, -DAY_MS - 1,
      Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2028, 1, 29, 12, 0, 0, 5), Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1), Date.UTC(1969, 11, 31, 23, 59, 59, 999), 8.64e15, -8.64e15,
    ];
    for (const ms of edges) assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
  });

  it('agrees with toISOString on 200,000 times spread over 1900–2200, in and out of order', () => {
    const from = Date.UTC(1900, 0, 1);
    const span = Date.UTC(2200, 0, 1) - from;
    // A fixed linear congruential sequence: the same times every run, days far apart and close together.
    // Math.imul keeps the product exact; a plain `*` past 2^53 rounds, and the sequence then repeats after ~16,000.
    let state = 12345;
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff;
      seen.add(state);
      const ms = from + Math.floor((state / 2 ** 31) * span);
      assert.equal(isoTime(ms), new Date(ms).toISOString());
    }
    assert.equal(seen.size, 200_000, 'every time is a different one');
  });

  it('takes the original path for what is not a whole millisecond or a Date cannot hold', () => {
    assert.equal(isoTime(1.5), new Date(1.5).toISOString());
    assert.throws(() => isoTime(Number.NaN), RangeError);
    assert.throws(() => isoTime(8.64e15 + 1), RangeError);
  });
});
