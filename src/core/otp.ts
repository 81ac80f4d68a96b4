import { randomBytes } from 'node:crypto';
import { HOTP, Secret } from 'otpauth';
import { invalid } from '../errors.js';
import { constantTimeEqual } from './codes.js';

/**
 * Authenticator-app codes: HOTP (RFC 4226) and TOTP (RFC 6238) over the `otpauth` package, plus the pure
 * decisions otpd makes around them — which counters a code may match, replay, look-ahead and the growing
 * delay after failed codes. No I/O here; `services/factors.ts` stores the state these functions decide on.
 */

export const OTP_TYPES = ['totp', 'hotp'] as const;
export type OtpType = (typeof OTP_TYPES)[number];

export const OTP_ALGORITHMS = ['SHA1', 'SHA256', 'SHA512'] as const;
export type OtpAlgorithm = (typeof OTP_ALGORITHMS)[number];

/** RFC 4226 §4 R4 asks for at least 6 digits (standards A2); 6 and 8 are what authenticator apps show. */
export const OTP_DIGITS = [6, 8] as const;
export const TOTP_PERIODS = [30, 60] as const;

/**
 * Secret length per algorithm: RFC 4226 §4 R6 asks for at least 160 bits (standards A3); RFC 2104 §3
 * recommends a key as long as the hash output, which is also what the RFC 6238 Appendix B seeds use.
 */
export const SECRET_BYTES: Readonly<Record<OtpAlgorithm, number>> = { SHA1: 20, SHA256: 32, SHA512: 64 };

export interface OtpParams {
  type: OtpType;
  algorithm: OtpAlgorithm;
  digits: number;
  /** Seconds per TOTP time step; null for HOTP. */
  period: number | null;
}

export interface OtpParamsInput {
  type: string;
  algorithm?: string | undefined;
  digits?: number | undefined;
  period?: number | undefined;
}

function oneOf<T extends string | number>(field: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw invalid(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Validates a factor's parameters and fills defaults (SHA1, 6 digits, 30 s), naming the bad field. */
export function otpParams(input: OtpParamsInput): OtpParams {
  const type = oneOf('type', input.type, OTP_TYPES);
  const algorithm = oneOf('algorithm', input.algorithm ?? 'SHA1', OTP_ALGORITHMS);
  if (input.digits !== undefined && (typeof input.digits !== 'number' || input.digits < 6)) {
    throw invalid('digits', 'must be at least 6 (RFC 4226 §4): use 6 or 8');
  }
  const digits = oneOf('digits', input.digits ?? 6, OTP_DIGITS);
  if (type === 'hotp') {
    if (input.period !== undefined) throw invalid('period', 'applies to totp factors only');
    return { type, algorithm, digits, period: null };
  }
  return { type, algorithm, digits, period: oneOf('period', input.period ?? 30, TOTP_PERIODS) };
}

/** A fresh secret from the CSPRNG, as long as the algorithm's hash output (at least 160 bits). */
export function generateSecret(algorithm: OtpAlgorithm): Buffer {
  return randomBytes(SECRET_BYTES[algorithm]);
}

/** RFC 4648 Base32 without padding, as the Key Uri Format wants the secret. */
export function base32Encode(bytes: Uint8Array): string {
  return new Secret({ buffer: Uint8Array.from(bytes).buffer }).base32;
}

const BASE32 = /^[A-Z2-7]+$/;

/** Strict Base32 (upper-case, no padding, no spaces); undefined when the text is not that. */
export function base32Decode(text: string): Uint8Array | undefined {
  if (!BASE32.test(text)) return undefined;
  return Secret.fromBase32(text).bytes;
}

/**
 * HOTP(K, C) (RFC 4226 §5.3): HMAC over the 8-byte big-endian counter, dynamic truncation, `digits`
 * decimal digits with leading zeros kept. Counters up to 2^53 - 1 are exact.
 */
export function hotp(secret: Uint8Array, counter: number, options: { algorithm: OtpAlgorithm; digits: number }): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('HOTP counter must be a non-negative safe integer');
  return HOTP.generate({ secret: new Secret({ buffer: Uint8Array.from(secret).buffer }), algorithm: options.algorithm, digits: options.digits, counter });
}

/** The RFC 6238 §4.2 time step T = floor((now - T0) / X) with T0 = 0; exact past 2^32 s. */
export function totpStep(timeMs: number, period: number): number {
  return Math.floor(timeMs / 1000 / period);
}

/** TOTP (RFC 6238 §4.2): HOTP with the time step as counter. */
export function totp(secret: Uint8Array, timeMs: number, options: { algorithm: OtpAlgorithm; digits: number; period: number }): string {
  return hotp(secret, totpStep(timeMs, options.period), options);
}

/**
 * The counters among `counters` whose code equals `code`. Every candidate is computed and compared in
 * constant time (standards V5), so the time taken says nothing about which one matched.
 */
export function matchingCounters(secret: Uint8Array, code: string, counters: readonly number[], options: { algorithm: OtpAlgorithm; digits: number }): number[] {
  const out: number[] = [];
  for (const counter of counters) {
    if (constantTimeEqual(hotp(secret, counter, options), code)) out.push(counter);
  }
  return out;
}

/** Where a factor stands: the last TOTP step accepted, and the next HOTP counter expected. */
export interface OtpState {
  lastUsedStep: number | null;
  counter: number;
}

export interface OtpPolicy {
  /** TOTP: steps of drift accepted each way (RFC 6238 §5.2). */
  totpWindow: number;
  /** HOTP: counters tried from the expected one on (RFC 4226 §7.4). */
  hotpLookAhead: number;
}

export type OtpMatch =
  /** The code is new: `state` is what the factor must hold afterwards. */
  | { outcome: 'accepted'; state: OtpState }
  /** The code belongs to a step/counter at or before the last one accepted (RFC 6238 §5.2 MUST NOT). */
  | { outcome: 'reused' }
  | { outcome: 'wrong' };

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, from); i <= to; i++) out.push(i);
  return out;
}

/**
 * Decides one authenticator code against a factor (standards V1-V3):
 * - TOTP accepts the steps T-w..T+w (w = `totpWindow`), but only those after the last accepted step, which
 *   then becomes the matched step — so a code, or an older code of the window, is never accepted twice.
 * - HOTP accepts counters C..C+lookAhead-1 and moves C to the matched counter + 1 (RFC 4226 §7.4).
 * A code that only matches an already-used step or counter is `reused`, so callers can report a replay.
 */
export function checkOtp(secret: Uint8Array, code: string, params: OtpParams, state: OtpState, policy: OtpPolicy, now: number): OtpMatch {
  const options = { algorithm: params.algorithm, digits: params.digits };
  if (params.type === 'totp') {
    const step = totpStep(now, params.period!);
    const window = range(step - policy.totpWindow, step + policy.totpWindow);
    const last = state.lastUsedStep;
    const fresh = window.filter((s) => last === null || s > last);
    const used = window.filter((s) => last !== null && s <= last);
    const matched = matchingCounters(secret, code, fresh, options);
    if (matched.length > 0) return { outcome: 'accepted', state: { ...state, lastUsedStep: Math.max(...matched) } };
    return matchingCounters(secret, code, used, options).length > 0 ? { outcome: 'reused' } : { outcome: 'wrong' };
  }
  const ahead = range(state.counter, state.counter + policy.hotpLookAhead - 1);
  const matched = matchingCounters(secret, code, ahead, options);
  if (matched.length > 0) return { outcome: 'accepted', state: { ...state, counter: Math.max(...matched) + 1 } };
  const behind = range(state.counter - policy.hotpLookAhead, state.counter - 1);
  return matchingCounters(secret, code, behind, options).length > 0 ? { outcome: 'reused' } : { outcome: 'wrong' };
}

/** Failed codes allowed before the growing delay starts (NIST 800-63B 5.2.2, standards T1). */
export const FREE_FAILURES = 5;
/** The delay never grows past 15 minutes: a throttle, not a permanent lock a stranger could set off. */
export const MAX_LOCK_SECONDS = 900;

/**
 * Seconds a factor stays locked after its `failures`-th consecutive failed code: none for the first four,
 * then 2^(failures-5) — 1 s, 2 s, 4 s … — capped at 15 minutes.
 */
export function lockSeconds(failures: number): number {
  if (failures < FREE_FAILURES) return 0;
  return Math.min(2 ** Math.min(failures - FREE_FAILURES, 30), MAX_LOCK_SECONDS);
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * An issuer or account name for the Key Uri Format: neither may contain a colon (it separates them in
 * the label), and control characters would not survive an authenticator app's display.
 */
export function checkLabelPart(field: string, value: string): string {
  if (value.length === 0 || value.length > 256) throw invalid(field, 'must be 1-256 characters');
  if (value.includes(':')) throw invalid(field, 'must not contain ":" (it separates issuer and account in the otpauth:// label)');
  if (CONTROL.test(value)) throw invalid(field, 'must not contain control characters');
  return value;
}

/**
 * The otpauth:// URI of the Google Authenticator Key Uri Format:
 * `otpauth://TYPE/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=…&digits=…&period=…` (TOTP) or
 * `…&counter=…` (HOTP). Issuer and account are percent-encoded (spaces as %20, never +), the secret is
 * Base32 without padding, and the issuer parameter equals the label prefix (standards A4).
 */
export function keyUri(input: { params: OtpParams; secret: string; issuer: string; account: string; counter?: number }): string {
  const e = encodeURIComponent;
  const { params } = input;
  const query = [`secret=${input.secret}`, `issuer=${e(input.issuer)}`, `algorithm=${params.algorithm}`, `digits=${params.digits}`];
  query.push(params.type === 'totp' ? `period=${params.period}` : `counter=${input.counter ?? 0}`);
  return `otpauth://${params.type}/${e(input.issuer)}:${e(input.account)}?${query.join('&')}`;
}
