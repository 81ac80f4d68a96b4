import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantTimeEqual, generateNumericCode } from '../../src/core/codes.js';

/**
 * Upper critical value of the chi-square distribution at significance 1e-6 (decisions 23), by the
 * Wilson–Hilferty approximation: accurate to a few percent here, and a false failure stays ~1e-6.
 */
function chiSquareCritical(degreesOfFreedom: number): number {
  const z = 4.753; // one-sided standard normal quantile for 1e-6
  const k = degreesOfFreedom;
  return k * (1 - 2 / (9 * k) + z * Math.sqrt(2 / (9 * k))) ** 3;
}

function chiSquare(counts: number[], expected: number): number {
  return counts.reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0);
}

describe('O1: out-of-band codes', () => {
  const N = 100_000;
  const codes = Array.from({ length: N }, () => generateNumericCode(6));

  it('O1: are 6 digits by default length, digits only, leading zeros kept', () => {
    assert.ok(codes.every((code) => /^\d{6}$/.test(code)));
    const leadingZero = codes.filter((code) => code.startsWith('0')).length;
    // Expected 10,000; a code generator that dropped leading zeros would give 0.
    assert.ok(leadingZero > 9_000 && leadingZero < 11_000, `leading zeros: ${leadingZero}`);
  });

  it('O1: every digit position is uniform (chi-square, 9 df, alpha 1e-6)', () => {
    for (let position = 0; position < 6; position++) {
      const counts = new Array(10).fill(0);
      for (const code of codes) counts[Number(code[position])]++;
      const statistic = chiSquare(counts, N / 10);
      assert.ok(statistic < chiSquareCritical(9), `position ${position}: chi-square ${statistic.toFixed(1)}`);
    }
  });

  it('O1: the first three digits together are uniform (chi-square, 999 df, alpha 1e-6)', () => {
    const counts = new Array(1000).fill(0);
    for (const code of codes) counts[Number(code.slice(0, 3))]++;
    const statistic = chiSquare(counts, N / 1000);
    assert.ok(statistic < chiSquareCritical(999), `chi-square ${statistic.toFixed(1)}`);
  });

  it('the chi-square check detects a biased generator (it can fail)', () => {
    // A modulo-biased generator: 7 random bits (0..127) mod 10 favour 0..7 by 13:12.
    const counts = new Array(10).fill(0);
    for (let i = 0; i < N; i++) counts[Math.floor(Math.random() * 128) % 10]++;
    assert.ok(chiSquare(counts, N / 10) > chiSquareCritical(9));
  });

  it('supports 4 to 10 digits and refuses other lengths', () => {
    for (let length = 4; length <= 10; length++) assert.match(generateNumericCode(length), new RegExp(`^\\d{${length}}$`));
    assert.throws(() => generateNumericCode(3), RangeError);
    assert.throws(() => generateNumericCode(11), RangeError);
  });
});

describe('V5: constant-time comparison', () => {
  it('V5: compares equal-length buffers with crypto.timingSafeEqual and rejects unequal lengths', () => {
    assert.equal(constantTimeEqual('abcdef', 'abcdef'), true);
    assert.equal(constantTimeEqual('abcdef', 'abcdeg'), false);
    assert.equal(constantTimeEqual('abc', 'abcdef'), false);
    assert.equal(constantTimeEqual(Buffer.from([1, 2]), Buffer.from([1, 2])), true);
  });
});
