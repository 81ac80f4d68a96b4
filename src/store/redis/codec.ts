import { createHash, createHmac } from 'node:crypto';
import { timeOfId } from '../../core/ids.js';
import { settingsFromStored } from '../../core/settings.js';
import type { VerificationRecord } from '../../core/verification.js';
import type { ApiKeyRecord, AppRecord, AuditEntry, NewAuditEntry, OutboxVerificationState, QueuedEvent } from '../store.js';

/**
 * Verification records ⇄ Redis hash fields, written to keep the hash a small listpack (Redis' compact encoding
 * of small hashes): memory per pending verification is what bench/redis-memory.ts measures, and a default
 * pending SMS verification fits 96 bytes of listpack in four fields (a, t, K, e).
 *
 * - Field names are one or two letters. The verification id is the key itself and is not repeated inside.
 * - Null fields are left out, and so are fields whose value is implied: `cr` when createdAt is the time inside
 *   the id, `u` and `l` when updatedAt / lastSentAt equal createdAt, and every field holding its value in
 *   IMPLIED below (status pending, channel sms, delivery queued, no attempts yet, one send, the default code
 *   length and attempt limit of app settings). The scripts read a missing field as that same value.
 * - `a` is a 60-bit digest of the app id (appDigest), not the id: ownership is all it is compared for, and the
 *   caller always names the app, so the record's appId is the caller's. Two apps of one deployment colliding
 *   is a 2^-60-per-pair event.
 * - `t` is a phone number without its `+`, which listpack stores as an integer; any other destination is
 *   stored with a leading `~` (encodeDestination), so the two can never be confused.
 * - `K` holds the key id and the code hash together, as Z85 (ZeroMQ's printable base-85) of their 4 + 32 bytes,
 *   when they have the shapes otpd gives them (8 hex digits; canonical base64url of 32 bytes): 45 characters
 *   instead of 8 + 43 in two fields. Anything else is stored as given, in `k` and `h`. Raw bytes would be
 *   shorter still, but ioredis writes a command holding a Buffer several microseconds slower.
 * - Numbers are decimal integers, which listpack stores as integers.
 *
 * The Lua scripts (scripts.ts) read and write these same names: a appDigest, s status, K / k + h key id and code
 * hash, n attempts, m maxAttempts, c sends, e expiresAt, l lastSentAt, u updatedAt, d deliveryStatus,
 * p deliveryProvider, pm providerMessageId, fr failureReason. Only the scripts change them after creation.
 */
const VERIFICATION_FIELDS = {
  appId: 'a',
  to: 't',
  channel: 'ch',
  status: 's',
  codeHash: 'h',
  codeKid: 'k',
  codeLength: 'cl',
  attempts: 'n',
  maxAttempts: 'm',
  sends: 'c',
  locale: 'lo',
  metadata: 'md',
  expiresAt: 'e',
  createdAt: 'cr',
  updatedAt: 'u',
  lastSentAt: 'l',
  deliveryStatus: 'd',
  deliveryProvider: 'p',
  providerMessageId: 'pm',
  failureReason: 'fr',
} as const satisfies Record<Exclude<keyof VerificationRecord, 'id'>, string>;

/** Values a field may leave out; the scripts read a missing field as the same (scripts.ts `IMPLIED_LUA`). */
export const IMPLIED = {
  status: 'pending',
  channel: 'sms',
  deliveryStatus: 'queued',
  attempts: 0,
  sends: 1,
  codeLength: 6,
  maxAttempts: 5,
} as const satisfies Partial<VerificationRecord>;

/** Whether a field can be left out because reading it back restores the same value (see above). */
function implied(record: VerificationRecord, name: keyof typeof VERIFICATION_FIELDS): boolean {
  switch (name) {
    case 'createdAt':
      return record.createdAt === timeOfId(record.id);
    case 'updatedAt':
    case 'lastSentAt':
      return record[name] === record.createdAt;
    case 'status':
    case 'channel':
    case 'deliveryStatus':
    case 'attempts':
    case 'sends':
    case 'codeLength':
    case 'maxAttempts':
      return record[name] === IMPLIED[name];
    default:
      return record[name] === null;
  }
}

const APP_DIGESTS = new Map<string, string>();
const APP_DIGEST_CACHE_LIMIT = 10_000;

/** The `a` field: 60 bits of SHA-256(appId) in decimal (a listpack integer). Cached: apps are few. */
export function appDigest(appId: string): string {
  let digest = APP_DIGESTS.get(appId);
  if (digest === undefined) {
    digest = BigInt('0x' + createHash('sha256').update(appId).digest('hex').slice(0, 15)).toString();
    if (APP_DIGESTS.size >= APP_DIGEST_CACHE_LIMIT) APP_DIGESTS.clear();
    APP_DIGESTS.set(appId, digest);
  }
  return digest;
}

const PHONE = /^\+[1-9][0-9]{0,17}$/;

/** The `t` field: `+15551234567` → `15551234567` (an integer to listpack), anything else → `~` + it. */
export function encodeDestination(to: string): string {
  return PHONE.test(to) ? to.slice(1) : '~' + to;
}

function decodeDestination(stored: string): string {
  return stored.startsWith('~') ? stored.slice(1) : '+' + stored;
}

const KID = /^[0-9a-f]{8}$/;
/** Canonical base64url of 32 bytes: 43 characters, the last carrying 4 bits and 2 zero bits. */
const CODE_HASH = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < Z85.length; i++) Z85_VALUES[Z85.charCodeAt(i)] = i;

/** The `K` field for a key id and code hash of the usual shapes, else undefined (stored in `k` and `h`). */
export function packCode(codeKid: string, codeHash: string): string | undefined {
  if (!KID.test(codeKid) || !CODE_HASH.test(codeHash)) return undefined;
  const bytes = Buffer.allocUnsafe(36);
  bytes.write(codeKid, 0, 'hex');
  bytes.write(codeHash, 4, 'base64url');
  let out = '';
  for (let i = 0; i < 36; i += 4) {
    let value = bytes.readUInt32BE(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[value % 85]! + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

function unpackCode(packed: string): { codeKid: string; codeHash: string } {
  const bytes = Buffer.allocUnsafe(36);
  for (let i = 0, at = 0; i < 36; i += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 85 + Z85_VALUES[packed.charCodeAt(at++)]!;
    bytes.writeUInt32BE(value, i);
  }
  return { codeKid: bytes.toString('hex', 0, 4), codeHash: bytes.toString('base64url', 4) };
}

/** Field/value pairs of a key id and code hash: `K` packed, or `k` and `h` as given. */
export function codeToFields(codeKid: string, codeHash: string): string[] {
  const packed = packCode(codeKid, codeHash);
  return packed === undefined ? ['k', codeKid, 'h', codeHash] : ['K', packed];
}

/**
 * Destination digest of (app, to), the field of its pending pointer: 53 bits of a keyed HMAC, so pointers
 * name no phone number. Two destinations of one group sharing a digest (2^-53 per pair) would only make
 * each create of one drop the other's pointer; the scripts still compare app and `to` before superseding.
 */
export function destinationDigest(routingKey: Buffer, appId: string, to: string): string {
  const bytes = createHmac('sha256', routingKey).update('pending\n').update(appId).update('\n').update(to).digest();
  return String(bytes.readUIntBE(0, 6) * 32 + (bytes[6]! >> 3));
}

/** Flat [field, value, …] list for HSET, null and implied fields omitted. */
export function verificationToFields(record: VerificationRecord): string[] {
  const out: string[] = [];
  for (const [name, field] of Object.entries(VERIFICATION_FIELDS) as [keyof typeof VERIFICATION_FIELDS, string][]) {
    if (implied(record, name)) continue;
    const value = record[name];
    if (name === 'appId') out.push(field, appDigest(record.appId));
    else if (name === 'to') out.push(field, encodeDestination(record.to));
    else if (name === 'codeHash') out.push(...codeToFields(record.codeKid, record.codeHash));
    else if (name !== 'codeKid') out.push(field, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return out;
}

/** A flat [field, value, …] list (what HGETALL gives a Lua script) as an object. */
export function pairsToObject(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** undefined when the hash is missing (empty) or belongs to another app, which must look the same. */
export function verificationFromHash(id: string, hash: Record<string, string>, appId: string): VerificationRecord | undefined {
  if (hash.a === undefined || hash.a !== appDigest(appId)) return undefined;
  const optional = (field: string): string | null => hash[field] ?? null;
  const integer = (field: string, implied: number): number => {
    const value = hash[field];
    return value === undefined ? implied : Number(value);
  };
  const metadata = optional('md');
  const createdAt = integer('cr', timeOfId(id));
  const code = hash.K === undefined ? { codeKid: hash.k ?? '', codeHash: hash.h ?? '' } : unpackCode(hash.K);
  return {
    id,
    appId,
    to: decodeDestination(hash.t ?? '~'),
    channel: (hash.ch ?? IMPLIED.channel) as VerificationRecord['channel'],
    status: (hash.s ?? IMPLIED.status) as VerificationRecord['status'],
    codeHash: code.codeHash,
    codeKid: code.codeKid,
    codeLength: integer('cl', IMPLIED.codeLength),
    attempts: integer('n', IMPLIED.attempts),
    maxAttempts: integer('m', IMPLIED.maxAttempts),
    sends: integer('c', IMPLIED.sends),
    locale: optional('lo'),
    metadata: metadata === null ? null : (JSON.parse(metadata) as Record<string, unknown>),
    expiresAt: integer('e', 0),
    createdAt,
    updatedAt: integer('u', createdAt),
    lastSentAt: integer('l', createdAt),
    deliveryStatus: (hash.d ?? IMPLIED.deliveryStatus) as VerificationRecord['deliveryStatus'],
    deliveryProvider: optional('p'),
    providerMessageId: optional('pm'),
    failureReason: optional('fr'),
  };
}

/**
 * A verification's status and sends from its `a`, `s` and `c` fields (HMGET order; null for a missing field),
 * decoded as `verificationFromHash` decodes them: null when the hash is missing or belongs to another app.
 */
export function verificationStateFromFields(fields: unknown, appId: string): OutboxVerificationState | null {
  const [a, s, c] = Array.isArray(fields) ? (fields as (string | number | null)[]) : [];
  if (a === undefined || a === null || String(a) !== appDigest(appId)) return null;
  return {
    status: (s === undefined || s === null ? IMPLIED.status : String(s)) as VerificationRecord['status'],
    sends: c === undefined || c === null ? IMPLIED.sends : Number(c),
  };
}

export function appFromHash(id: string, hash: Record<string, string>): AppRecord | undefined {
  if (hash.n === undefined) return undefined;
  return {
    id,
    name: hash.n,
    settings: settingsFromStored(JSON.parse(hash.s ?? '{}') as Record<string, unknown>),
    createdAt: Number(hash.c),
    updatedAt: Number(hash.u),
  };
}

export function apiKeyFromHash(hashOfKey: string, hash: Record<string, string>): ApiKeyRecord | undefined {
  if (hash.i === undefined || hash.a === undefined) return undefined;
  return {
    id: hash.i,
    appId: hash.a,
    hash: hashOfKey,
    prefix: hash.p ?? '',
    createdAt: Number(hash.c),
    revokedAt: hash.r === undefined ? null : Number(hash.r),
  };
}

/**
 * Audit entries ⇄ stream fields: t at, e event, r resource, k keyId, ip, ua userAgent, rq requestId,
 * dh destinationHash, dm destinationMasked, x details JSON. Null fields are left out.
 */
const AUDIT_FIELDS = {
  at: 't',
  event: 'e',
  resource: 'r',
  keyId: 'k',
  ip: 'ip',
  userAgent: 'ua',
  requestId: 'rq',
  destinationHash: 'dh',
  destinationMasked: 'dm',
  details: 'x',
} as const satisfies Record<keyof NewAuditEntry, string>;

export function auditToFields(entry: NewAuditEntry): string[] {
  const out: string[] = [];
  for (const [name, field] of Object.entries(AUDIT_FIELDS) as [keyof NewAuditEntry, string][]) {
    const value = entry[name];
    if (value === null) continue;
    out.push(field, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return out;
}

export function auditFromFields(id: string, flat: string[]): AuditEntry {
  const hash = pairsToObject(flat);
  const optional = (field: string): string | null => hash[field] ?? null;
  const details = optional('x');
  return {
    id,
    at: Number(hash.t),
    event: hash.e ?? '',
    resource: optional('r'),
    keyId: optional('k'),
    ip: optional('ip'),
    userAgent: optional('ua'),
    requestId: optional('rq'),
    destinationHash: optional('dh'),
    destinationMasked: optional('dm'),
    details: details === null ? null : (JSON.parse(details) as AuditEntry['details']),
  };
}

/** A queued event from its hash (fields in keys.ts). */
export function eventFromHash(id: string, hash: Record<string, string>): QueuedEvent {
  return {
    id,
    appId: hash.a ?? '',
    type: hash.y ?? '',
    payload: hash.p ?? '',
    attempts: Number(hash.n ?? 0),
    dueAt: Number(hash.d),
    expiresAt: Number(hash.e),
    lastError: hash.le ?? null,
  };
}
