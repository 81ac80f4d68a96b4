import { createHmac } from 'node:crypto';
import { pooledRandomBytes } from './random.js';

/**
 * Time-ordered identifiers: 10 Crockford base32 characters of milliseconds since the epoch, then randomness.
 * Sorting by id sorts by creation time, so SQLite inserts append to the primary-key B-tree instead of
 * splitting random pages (decisions 21), and ids still carry 60+ random bits so they cannot be guessed.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const ALPHABET_CODES = Buffer.from(ALPHABET, 'latin1');
/** Room for any id composed here: a prefix of a few letters, `_`, 10 time and 16 random characters. */
const SCRATCH = Buffer.allocUnsafeSlow(64);
const MAX_PREFIX = 15;
const PREFIX = new RegExp(`^[a-z0-9]{1,${MAX_PREFIX}}$`);
/** Prefixes already found valid: they are this code's own few constants, so checked once each. */
const validPrefixes = new Set<string>();

function checkPrefix(prefix: string): void {
  // A longer or non-ASCII prefix would be cut short or mangled by the scratch buffer.
  if (!PREFIX.test(prefix)) throw new Error(`id prefix ${JSON.stringify(prefix)} must be 1-${MAX_PREFIX} lowercase letters or digits`);
  if (validPrefixes.size < 64) validPrefixes.add(prefix);
}

/**
 * An id's characters are written into one scratch buffer and read out as a single flat string: built by
 * `+=` one character at a time, an id left a chain of ~26 intermediate strings (~0.9 KiB of garbage) on
 * every create and audit entry, and took ~10% longer.
 */
function compose(prefix: string, now: number, middle: string, randomCount: number): string {
  if (!validPrefixes.has(prefix)) checkPrefix(prefix);
  let at = SCRATCH.write(prefix, 0, 'latin1');
  SCRATCH[at++] = 0x5f; // '_'
  let value = now;
  for (let i = at + 9; i >= at; i--) {
    SCRATCH[i] = ALPHABET_CODES[value % 32]!;
    value = Math.floor(value / 32);
  }
  at += 10;
  if (middle !== '') at += SCRATCH.write(middle, at, 'latin1');
  const bytes = pooledRandomBytes(randomCount);
  // 256 is a multiple of 32, so taking the low five bits of a uniform byte stays uniform.
  for (let i = 0; i < randomCount; i++) SCRATCH[at + i] = ALPHABET_CODES[bytes[i]! & 31]!;
  return SCRATCH.toString('latin1', 0, at + randomCount);
}

/** `prefix_` + time + 16 random characters (80 bits). */
export function newId(prefix: string, now = Date.now()): string {
  return compose(prefix, now, '', 16);
}

const TAG_LENGTH = 4;

/**
 * Verification ids carry a 4-character routing tag derived from (app, destination) — see
 * `routingTag()` below — so every verification of one destination lands in the same Redis Cluster
 * hash slot as the destination's index, and superseding one verification by the next stays one atomic script.
 */
export function newVerificationId(routingTag: string, now = Date.now()): string {
  if (routingTag.length !== TAG_LENGTH) throw new Error('routing tag must be 4 characters');
  return compose('ve', now, routingTag, 12);
}

/**
 * Whether a reference names a verification (the outbox also carries messages of other callers, such as
 * seed-001 time-window codes, whose references are other ids). The prefix alone decides: a malformed `ve_`
 * reference still names a verification, one that cannot exist.
 */
export function isVerificationId(reference: string): boolean {
  return reference.startsWith('ve_');
}

export function routingTagOfVerificationId(id: string): string | undefined {
  if (!/^ve_[0-9a-hjkmnp-tv-z]{26}$/.test(id)) return undefined;
  return id.slice(13, 13 + TAG_LENGTH);
}

/**
 * The routing tag of a destination: 20 bits of HMAC(routingKey, appId + to). Keyed, so an id shown to a
 * person does not let them test guesses of the destination it was sent to.
 */
export function routingTag(routingKey: Buffer, appId: string, to: string): string {
  return routingTagFromBytes(createHmac('sha256', routingKey).update(appId).update('\n').update(to).digest());
}

function routingTagFromBytes(bytes: Uint8Array): string {
  const value = ((bytes[0]! << 12) | (bytes[1]! << 4) | (bytes[2]! >> 4)) >>> 0;
  let out = '';
  for (let i = 0; i < TAG_LENGTH; i++) out += ALPHABET[(value >> (5 * (TAG_LENGTH - 1 - i))) & 31];
  return out;
}

/** The creation time encoded in a time-ordered id. */
export function timeOfId(id: string): number {
  const start = id.indexOf('_') + 1;
  let ms = 0;
  for (let i = start; i < start + 10; i++) ms = ms * 32 + ALPHABET.indexOf(id[i]!);
  return ms;
}
