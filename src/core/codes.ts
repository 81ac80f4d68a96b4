import { randomInt, timingSafeEqual } from 'node:crypto';

/**
 * A numeric one-time code of `length` digits from the CSPRNG.
 * `crypto.randomInt` draws by rejection sampling, so every value in [0, 10^length) is equally likely
 * (no modulo bias), and padding keeps leading zeros (standards O1, NIST 800-63B-4 3.1.3.2).
 */
export function generateNumericCode(length: number): string {
  if (!Number.isInteger(length) || length < 4 || length > 10) throw new RangeError('code length must be 4..10');
  return randomInt(0, 10 ** length).toString().padStart(length, '0');
}

/**
 * Constant-time comparison of two strings or byte buffers (standards V5, ASVS 5 11.2.4).
 * Unequal lengths are compared against a copy of the expected value so the time spent does not depend on
 * where the inputs differ.
 */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const left = typeof a === 'string' ? Buffer.from(a) : a;
  const right = typeof b === 'string' ? Buffer.from(b) : b;
  if (left.length !== right.length) {
    timingSafeEqual(right, right);
    return false;
  }
  return timingSafeEqual(left, right);
}
