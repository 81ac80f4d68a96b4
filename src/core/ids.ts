import { createHmac } from 'node:crypto';
import { pooledRandomBytes } from './random.js';

/**
 * Time-ordered identifiers: 10 Crockford base32 characters of milliseconds since the epoch, then randomness.
 * Sorting by id sorts by creation time, so SQLite inserts append to the primary-key B-tree instead of
 * splitting random pages (decisions 21), and ids still carry 60+ random bits so they cannot be guessed.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encodeTime(ms: number): string {
  let out = '';
  let value = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

function randomChars(count: number): string {
  const bytes = pooledRandomBytes(count);
  let out = '';
  // 256 is a multiple of 32, so taking the low five bits of a uniform byte stays uniform.
  for (let i = 0; i < count; i++) out += ALPHABET[bytes[i]! & 31];
  return out;
}

/** `prefix_` + time + 16 random characters (80 bits). */
export function newId(prefix: string, now = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${randomChars(16)}`;
}

const TAG_LENGTH = 4;

/**
 * Verification ids carry a 4-character routing tag derived from (app, destination) — see
 * `routingTag()` below — so every verification of one destination lands in the same Redis Cluster
 * hash slot as the destination's index, and superseding one verification by the next stays one atomic script.
 */
export function newVerificationId(routingTag: string, now = Date.now()): string {
  if (routingTag.length !== TAG_LENGTH) throw new Error('routing tag must be 4 characters');
  return `ve_${encodeTime(now)}${routingTag}${randomChars(12)}`;
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
