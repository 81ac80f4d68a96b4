import { randomBytes } from 'node:crypto';

/**
 * Recovery codes: single-use codes a person writes down when enrolling an authenticator, to sign in when
 * the device is lost (NIST 800-63B-4 look-up secrets). Each is 12 characters of Crockford Base32 — 60 bits
 * from the CSPRNG, well above the 64-bit-total / 20-bit-per-secret floor of NIST 800-63B 5.1.2.1 — shown
 * as `XXXX-XXXX-XXXX`. Only keyed hashes of them are stored (services/factors.ts).
 */

export const RECOVERY_CODE_COUNT = 10;
const LENGTH = 12;
/** Crockford's alphabet: no I, L, O or U, so what is read aloud or copied by hand is unambiguous. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function generateOne(): string {
  const bytes = randomBytes(LENGTH);
  let out = '';
  // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
  for (let i = 0; i < LENGTH; i++) out += ALPHABET[bytes[i]! & 31];
  return `${out.slice(0, 4)}-${out.slice(4, 8)}-${out.slice(8)}`;
}

/** A fresh set of distinct codes, formatted for display. */
export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateOne());
  return [...codes];
}

/**
 * The canonical form of what a person typed, or undefined when it cannot be a recovery code: case,
 * hyphens and spaces do not matter, and O/I/L are read as 0/1/1 as Crockford Base32 prescribes.
 */
export function normalizeRecoveryCode(input: string): string | undefined {
  const compact = input
    .replace(/[\s-]/g, '')
    .toUpperCase()
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  if (compact.length !== LENGTH) return undefined;
  for (const char of compact) if (!ALPHABET.includes(char)) return undefined;
  return compact;
}
