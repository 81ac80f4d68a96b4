import { invalid } from '../errors.js';
import type { SendRule } from './destination-sends.js';

/**
 * Rate-limit policy, pure: which limits a send or a check is subject to, under which store keys, with
 * which maximum and window. Enforcement (atomic counters on the active store, refunds, the 429) lives in
 * src/services/rate-limiter.ts; the settings rows that configure it are in src/core/settings.ts
 * (`rateLimits`, `destinationCooldown`, `rateLimitBuckets`). docs/abuse-protection.md explains each.
 *
 * Sources: OWASP API4:2023 (unrestricted resource consumption), ASVS 5 2.4.1, NIST 800-63B 5.2.2
 * (throttling), and Twilio Verify's defaults (5 sends per destination per 10 minutes).
 */

/** The built-in limits, by the name a 429 reports in its `limit` member. */
export const LIMIT_NAMES = [
  'sends-per-destination',
  'verifications-per-key',
  'verifications-per-ip',
  'checks-per-key',
  'checks-per-ip',
  'checks-per-verification',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

export interface WindowLimit {
  max: number;
  windowSeconds: number;
}

/** Every built-in limit; `null` switches one off. */
export type RateLimitSettings = Record<LimitName, WindowLimit | null>;

/** Caller-defined buckets (Twilio Verify's `RateLimits`): bucket name → its limit. */
export type BucketSettings = Record<string, WindowLimit>;

/**
 * Defaults. Per-destination sends follow Twilio Verify; the per-IP limits bound the keyless surfaces
 * (hosted page, seeds 001/003); per-key and per-verification limits are off until an operator sets them
 * (API keys have `apiCallsPerHour`, and `maxAttempts` already bounds wrong codes per verification).
 */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  'sends-per-destination': { max: 5, windowSeconds: 600 },
  'verifications-per-key': null,
  'verifications-per-ip': { max: 100, windowSeconds: 3_600 },
  'checks-per-key': null,
  'checks-per-ip': { max: 300, windowSeconds: 3_600 },
  'checks-per-verification': null,
};

const MAX_LIMIT = 100_000_000;
const MAX_WINDOW_SECONDS = 7 * 86_400;
const BUCKET_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_BUCKETS = 20;
/** A caller's bucket value: printable, bounded (it becomes part of a store key). */
const BUCKET_VALUE = /^[\x21-\x7e]{1,128}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

export function parseWindowLimit(field: string, value: unknown): WindowLimit {
  if (!isPlainObject(value)) throw invalid(field, 'must be an object {"max": N, "windowSeconds": S}');
  for (const key of Object.keys(value)) if (key !== 'max' && key !== 'windowSeconds') throw invalid(`${field}.${key}`, 'is not a known field (max, windowSeconds)');
  const { max, windowSeconds } = value;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_LIMIT) throw invalid(`${field}.max`, `must be an integer from 1 to ${MAX_LIMIT}`);
  if (typeof windowSeconds !== 'number' || !Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS) {
    throw invalid(`${field}.windowSeconds`, `must be an integer from 1 to ${MAX_WINDOW_SECONDS}`);
  }
  return { max, windowSeconds };
}

/** `rateLimits`: names not given keep their default, so setting one limit never drops the others. */
export function parseRateLimits(value: unknown, field = 'rateLimits'): RateLimitSettings {
  if (!isPlainObject(value)) throw invalid(field, `must be an object of limit name → {"max", "windowSeconds"} or null; names: ${LIMIT_NAMES.join(', ')}`);
  const out: RateLimitSettings = { ...DEFAULT_RATE_LIMITS };
  for (const [name, limit] of Object.entries(value)) {
    if (!(LIMIT_NAMES as readonly string[]).includes(name)) throw invalid(`${field}.${name}`, `is not a limit; limits: ${LIMIT_NAMES.join(', ')}`);
    out[name as LimitName] = limit === null ? null : parseWindowLimit(`${field}.${name}`, limit);
  }
  return out;
}

export function parseBuckets(value: unknown, field = 'rateLimitBuckets'): BucketSettings {
  if (!isPlainObject(value)) throw invalid(field, 'must be an object of bucket name → {"max", "windowSeconds"}');
  const entries = Object.entries(value);
  if (entries.length > MAX_BUCKETS) throw invalid(field, `must define at most ${MAX_BUCKETS} buckets`);
  const out: BucketSettings = {};
  for (const [name, limit] of entries) {
    if (!BUCKET_NAME.test(name)) throw invalid(`${field}.${name}`, 'bucket names are 1-32 lower-case letters, digits and _, starting with a letter');
    out[name] = parseWindowLimit(`${field}.${name}`, limit);
  }
  return out;
}

/**
 * Who is asking, as far as limits care. `keyId` is the API key of a keyed request. `ip` is the client
 * address (`request.ip`; X-Forwarded-For only with OTPD_TRUST_PROXY).
 */
export interface RequestContext {
  ip?: string | undefined;
  keyId?: string | undefined;
  /** For the audit log (src/services/audit.ts): the client's User-Agent (cut to 256 characters) and the request id. */
  userAgent?: string | undefined;
  requestId?: string | undefined;
}

/**
 * The context of work no request asked for — CLI commands, the config file, the default app at start,
 * delivery reports and webhook retries: no caller to limit per key or per address, nothing to audit but
 * the event itself.
 */
export const NO_REQUEST: RequestContext = Object.freeze({});

/** One counter a request must pass: `limit` names it in the 429, `key` is its store key. */
export interface LimitCheck {
  limit: string;
  key: string;
  max: number;
  windowMs: number;
}

/** The limit settings this module reads (a subset of AppSettings, so tests can pass just these). */
export interface LimitPolicy {
  rateLimits: RateLimitSettings;
  rateLimitBuckets: BucketSettings;
}

function check(appId: string, limit: string, subject: string, window: WindowLimit): LimitCheck {
  return { limit, key: `rl:${appId}:${limit}:${subject}`, max: window.max, windowMs: window.windowSeconds * 1000 };
}

/**
 * Per-IP limits count only requests without an API key: a keyed request comes from the customer's own
 * servers, whose address says nothing about the person (a busy backend would trip any per-IP limit). Such
 * callers pass the person's address as a caller bucket instead, as Twilio Verify's RateLimits do.
 */
function byIp(context: RequestContext): string | undefined {
  return context.keyId === undefined && context.ip ? context.ip : undefined;
}

function limitOf(policy: LimitPolicy, name: LimitName): WindowLimit | null {
  // Settings stored before a limit existed lack it: the default applies.
  const value = policy.rateLimits[name];
  return value === undefined ? DEFAULT_RATE_LIMITS[name] : value;
}

/**
 * Validates a create's `rateLimits` (bucket name → value) against the app's buckets: every key must be a
 * bucket the app defines (an unknown one is a caller's mistake worth naming, not something to ignore).
 */
export function callerBuckets(policy: LimitPolicy, given: Record<string, unknown> | undefined, field = 'rateLimits'): Array<[string, string]> {
  if (given === undefined) return [];
  const defined = Object.keys(policy.rateLimitBuckets);
  const out: Array<[string, string]> = [];
  for (const [name, raw] of Object.entries(given)) {
    if (!Object.hasOwn(policy.rateLimitBuckets, name)) {
      throw invalid(`${field}.${name}`, defined.length === 0 ? 'is not a bucket of this app (it defines none; see the rateLimitBuckets setting)' : `is not a bucket of this app (buckets: ${defined.join(', ')})`);
    }
    const value = typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : raw;
    if (typeof value !== 'string' || !BUCKET_VALUE.test(value)) throw invalid(`${field}.${name}`, 'must be a string of 1-128 printable ASCII characters without spaces, or a number');
    out.push([name, value]);
  }
  return out;
}

/**
 * The caller's limits of creating a verification: per key, per address, the caller's buckets. The
 * destination's own (its cooldown and `sends-per-destination`) are `sendRule`'s, decided in one store step.
 */
export function limitsForCreate(appId: string, policy: LimitPolicy, context: RequestContext, buckets: Array<[string, string]>): LimitCheck[] {
  const out: LimitCheck[] = [];
  const perKey = limitOf(policy, 'verifications-per-key');
  if (perKey && context.keyId !== undefined) out.push(check(appId, 'verifications-per-key', context.keyId, perKey));
  const ip = byIp(context);
  const perIp = limitOf(policy, 'verifications-per-ip');
  if (perIp && ip !== undefined) out.push(check(appId, 'verifications-per-ip', ip, perIp));
  for (const [name, value] of buckets) {
    const bucket = policy.rateLimitBuckets[name];
    if (bucket) out.push(check(appId, `bucket:${name}`, value, bucket));
  }
  return out;
}

/**
 * The destination's rules of any send to it (a create or a resend): `sends-per-destination`, and for a
 * create the destination cooldown (`cooldownMs`, 0 for a resend or when it is off).
 */
export function sendRule(policy: LimitPolicy, cooldownMs: number): SendRule {
  const perDestination = limitOf(policy, 'sends-per-destination');
  return { cooldownMs, window: perDestination && { max: perDestination.max, windowMs: perDestination.windowSeconds * 1000 } };
}

/** Limits of a check: the caller's and the verification's. */
export function limitsForCheck(appId: string, policy: LimitPolicy, verificationId: string, context: RequestContext): LimitCheck[] {
  const out: LimitCheck[] = [];
  const perKey = limitOf(policy, 'checks-per-key');
  if (perKey && context.keyId !== undefined) out.push(check(appId, 'checks-per-key', context.keyId, perKey));
  const ip = byIp(context);
  const perIp = limitOf(policy, 'checks-per-ip');
  if (perIp && ip !== undefined) out.push(check(appId, 'checks-per-ip', ip, perIp));
  const perVerification = limitOf(policy, 'checks-per-verification');
  if (perVerification) out.push(check(appId, 'checks-per-verification', verificationId, perVerification));
  return out;
}

/** Retry-After seconds from milliseconds: at least 1, rounded up. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
