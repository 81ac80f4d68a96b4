import { timeOfId } from '../../core/ids.js';
import { settingsFromStored } from '../../core/settings.js';
import type { VerificationRecord } from '../../core/verification.js';
import type { ApiKeyRecord, AppRecord, AuditEntry, NewAuditEntry, QueuedEvent } from '../store.js';

/**
 * Records ⇄ Redis hash fields. Field names are one or two letters, null fields are left out, and so are three
 * fields whose value at creation is implied: `cr` when createdAt is the time inside the id, `u` when
 * updatedAt equals createdAt, `d` when the delivery status is `queued`. A verification hash thus stays a
 * listpack (Redis' compact encoding for small hashes) of under 192 bytes for a phone number, which is what
 * keeps memory per pending verification low (bench/redis-memory.ts). Numbers are written as decimal integers,
 * which listpack stores as integers. The verification id is the key itself and is not repeated inside.
 *
 * The Lua scripts (scripts.ts) read and write these same names: a appId, s status, h codeHash, k codeKid,
 * cl codeLength, n attempts, m maxAttempts, c sends, e expiresAt, l lastSentAt, u updatedAt, d deliveryStatus,
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

/** Whether a field can be left out because reading it back restores the same value (see above). */
function implied(record: VerificationRecord, name: keyof typeof VERIFICATION_FIELDS): boolean {
  switch (name) {
    case 'createdAt':
      return record.createdAt === timeOfId(record.id);
    case 'updatedAt':
      return record.updatedAt === record.createdAt;
    case 'deliveryStatus':
      return record.deliveryStatus === 'queued';
    default:
      return record[name] === null;
  }
}

/** Flat [field, value, …] list for HSET, null and implied fields omitted. */
export function verificationToFields(record: VerificationRecord): string[] {
  const out: string[] = [];
  for (const [name, field] of Object.entries(VERIFICATION_FIELDS) as [keyof typeof VERIFICATION_FIELDS, string][]) {
    if (implied(record, name)) continue;
    const value = record[name];
    out.push(field, typeof value === 'object' ? JSON.stringify(value) : String(value));
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
  if (hash.a === undefined || hash.a !== appId) return undefined;
  const optional = (field: string): string | null => hash[field] ?? null;
  const integer = (field: string): number => Number(hash[field]);
  const metadata = optional('md');
  const createdAt = hash.cr === undefined ? timeOfId(id) : Number(hash.cr);
  return {
    id,
    appId: hash.a,
    to: hash.t ?? '',
    channel: hash.ch as VerificationRecord['channel'],
    status: hash.s as VerificationRecord['status'],
    codeHash: hash.h ?? '',
    codeKid: hash.k ?? '',
    codeLength: integer('cl'),
    attempts: integer('n'),
    maxAttempts: integer('m'),
    sends: integer('c'),
    locale: optional('lo'),
    metadata: metadata === null ? null : (JSON.parse(metadata) as Record<string, unknown>),
    expiresAt: integer('e'),
    createdAt,
    updatedAt: hash.u === undefined ? createdAt : Number(hash.u),
    lastSentAt: integer('l'),
    deliveryStatus: (hash.d ?? 'queued') as VerificationRecord['deliveryStatus'],
    deliveryProvider: optional('p'),
    providerMessageId: optional('pm'),
    failureReason: optional('fr'),
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
