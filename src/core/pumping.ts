import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { invalid } from '../errors.js';
import { CHANNELS, type Channel } from './destination.js';
import { parseWindowLimit, type WindowLimit } from './rate-limits.js';

/**
 * SMS-pumping (toll fraud) rules, pure: which country a number is in, which prefix counters it feeds, what
 * a message costs, and when a prefix converts too poorly to keep sending to. The guard that keeps the
 * counters and refuses before any provider is called is src/services/pumping-guard.ts.
 *
 * Pumping means bots requesting codes to premium or attacker-owned ranges for the termination fees; the
 * codes are never entered. So the signals are where the numbers are (country allow-list), how fast one
 * range is being sent to (prefix velocity), what it costs (daily spend cap) and whether anyone ever
 * enters the codes (conversion). OWASP API4:2023, ASVS 5 2.4.1, standards O5.
 */

/** Prices per channel: prefix (`+` and digits, or `*` for any other) → price of one message. */
export type PriceSettings = Partial<Record<Channel, Record<string, number>>>;
/** Daily spend cap per channel, in the same unit as the prices. */
export type SpendCapSettings = Partial<Record<Channel, number>>;
/** Velocity per prefix; `*` is the limit of each country calling code no other entry covers. */
export type PrefixLimitSettings = Record<string, WindowLimit>;

/** The low-conversion rule: ≥ minSends sends to a prefix within windowSeconds, under minApprovalRate approved → block it. */
export interface ConversionGuard {
  minSends: number;
  minApprovalRate: number;
  windowSeconds: number;
  blockSeconds: number;
  /** Digits after `+` that make a prefix (country code and the start of the national number). */
  prefixDigits: number;
}

export const DEFAULT_CONVERSION_GUARD: ConversionGuard = { minSends: 20, minApprovalRate: 0.1, windowSeconds: 3_600, blockSeconds: 3_600, prefixDigits: 5 };

const PREFIX = /^\+[1-9]\d{0,14}$/;
const COUNTRY = /^[A-Z]{2}$/;
/** Prices and caps are kept as integer millionths in counters, so no float drift accumulates. */
const MICROS = 1_000_000;
const MAX_PRICE = 1_000;
const MAX_CAP = 100_000_000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

function checkPrefixKey(field: string, key: string): void {
  if (key !== '*' && !PREFIX.test(key)) throw invalid(`${field}.${key}`, 'keys are E.164 prefixes (+ and 1-15 digits, such as +44 or +4475) or * for any other');
}

function checkChannel(field: string, key: string): Channel {
  if (!(CHANNELS as readonly string[]).includes(key)) throw invalid(`${field}.${key}`, `is not a channel (${CHANNELS.join(', ')})`);
  return key as Channel;
}

export function checkCountry(value: string): string | undefined {
  return COUNTRY.test(value) ? undefined : 'items must be ISO 3166-1 alpha-2 country codes in capitals, such as US, GB or IN';
}

export function parsePrices(value: unknown, field = 'prices'): PriceSettings {
  if (!isPlainObject(value)) throw invalid(field, 'must be an object of channel → {prefix: price}, such as {"sms": {"+1": 0.0079, "*": 0.05}}');
  const out: PriceSettings = {};
  for (const [channelName, table] of Object.entries(value)) {
    const channel = checkChannel(field, channelName);
    if (!isPlainObject(table)) throw invalid(`${field}.${channel}`, 'must be an object of prefix → price');
    const prices: Record<string, number> = {};
    for (const [prefix, price] of Object.entries(table)) {
      checkPrefixKey(`${field}.${channel}`, prefix);
      if (typeof price !== 'number' || !Number.isFinite(price) || price < 0 || price > MAX_PRICE) throw invalid(`${field}.${channel}.${prefix}`, `must be a number from 0 to ${MAX_PRICE}`);
      prices[prefix] = price;
    }
    out[channel] = prices;
  }
  return out;
}

export function parseSpendCaps(value: unknown, field = 'dailySpendCap'): SpendCapSettings {
  if (!isPlainObject(value)) throw invalid(field, 'must be an object of channel → daily cap, such as {"sms": 50}');
  const out: SpendCapSettings = {};
  for (const [channelName, cap] of Object.entries(value)) {
    const channel = checkChannel(field, channelName);
    if (typeof cap !== 'number' || !Number.isFinite(cap) || cap <= 0 || cap > MAX_CAP) throw invalid(`${field}.${channel}`, `must be a number above 0 and at most ${MAX_CAP}`);
    out[channel] = cap;
  }
  return out;
}

export function parsePrefixLimits(value: unknown, field = 'prefixLimits'): PrefixLimitSettings {
  if (!isPlainObject(value)) throw invalid(field, 'must be an object of prefix → {"max", "windowSeconds"}, such as {"+44": {"max": 100, "windowSeconds": 3600}}');
  const out: PrefixLimitSettings = {};
  for (const [prefix, limit] of Object.entries(value)) {
    checkPrefixKey(field, prefix);
    out[prefix] = parseWindowLimit(`${field}.${prefix}`, limit);
  }
  return out;
}

export function parseConversionGuard(value: unknown, field = 'conversionGuard'): ConversionGuard | null {
  if (value === null) return null;
  if (!isPlainObject(value)) throw invalid(field, 'must be null (off) or an object {minSends, minApprovalRate, windowSeconds, blockSeconds, prefixDigits}');
  const out: ConversionGuard = { ...DEFAULT_CONVERSION_GUARD };
  const integer = (key: keyof ConversionGuard, min: number, max: number) => {
    const given = value[key];
    if (given === undefined) return;
    if (typeof given !== 'number' || !Number.isInteger(given) || given < min || given > max) throw invalid(`${field}.${key}`, `must be an integer from ${min} to ${max}`);
    out[key] = given;
  };
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(DEFAULT_CONVERSION_GUARD, key)) throw invalid(`${field}.${key}`, `is not a known field (${Object.keys(DEFAULT_CONVERSION_GUARD).join(', ')})`);
  }
  integer('minSends', 1, 1_000_000);
  integer('windowSeconds', 60, 7 * 86_400);
  integer('blockSeconds', 1, 30 * 86_400);
  integer('prefixDigits', 1, 15);
  if (value.minApprovalRate !== undefined) {
    const rate = value.minApprovalRate;
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > 1) throw invalid(`${field}.minApprovalRate`, 'must be a number above 0 and at most 1');
    out.minApprovalRate = rate;
  }
  return out;
}

/** The phone channels: only these have countries, prefixes and termination fees to pump. */
export function isPhoneChannel(channel: Channel): boolean {
  return channel !== 'email';
}

/**
 * ISO 3166-1 alpha-2 country of an E.164 number (libphonenumber-js metadata: calling code and, for shared
 * codes such as +1, the leading digits), or undefined when the number fits no country's plan.
 */
export function countryOf(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.country;
}

/** The country calling code of an E.164 number (`+44`), or undefined when none is assigned. */
export function callingCodeOf(e164: string): string | undefined {
  const code = parsePhoneNumberFromString(e164)?.countryCallingCode;
  return code ? `+${code}` : undefined;
}

/**
 * Whether the app may send to this number. An empty allow-list allows every country; otherwise a number
 * whose country cannot be determined is refused too (fail closed: unassigned ranges are a pumping favourite).
 */
export function countryAllowed(allowedCountries: readonly string[], e164: string): { allowed: boolean; country: string | undefined } {
  const country = countryOf(e164);
  if (allowedCountries.length === 0) return { allowed: true, country };
  return { allowed: country !== undefined && allowedCountries.includes(country), country };
}

/** The longest key of `table` that `e164` starts with, else `*` when present. */
export function longestPrefix<T>(table: Record<string, T>, e164: string): string | undefined {
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    if (key !== '*' && e164.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  }
  return best ?? (Object.hasOwn(table, '*') ? '*' : undefined);
}

/**
 * The prefix velocity counter a number feeds: the longest configured prefix it starts with; under `*`,
 * its own country calling code, so each country gets the `*` limit separately.
 */
export function prefixLimitFor(limits: PrefixLimitSettings, e164: string): { prefix: string; limit: WindowLimit } | undefined {
  const key = longestPrefix(limits, e164);
  if (key === undefined) return undefined;
  const prefix = key === '*' ? (callingCodeOf(e164) ?? e164.slice(0, 2)) : key;
  return { prefix, limit: limits[key]! };
}

/** Price of one message on `channel` to `to` (longest prefix, else `*`, else 0), in millionths. */
export function priceMicros(prices: PriceSettings, channel: Channel, to: string): number {
  const table = prices[channel];
  if (!table) return 0;
  const key = channel === 'email' ? (Object.hasOwn(table, '*') ? '*' : undefined) : longestPrefix(table, to);
  return key === undefined ? 0 : Math.round(table[key]! * MICROS);
}

export function toMicros(amount: number): number {
  return Math.round(amount * MICROS);
}

/** The prefix a number counts under for the conversion rule. */
export function conversionPrefix(e164: string, guard: ConversionGuard): string {
  return e164.slice(0, 1 + guard.prefixDigits);
}

/** True when a prefix has had enough sends to judge and too few of them were approved. */
export function convertsTooPoorly(sends: number, approvals: number, guard: ConversionGuard): boolean {
  return sends >= guard.minSends && approvals < sends * guard.minApprovalRate;
}

/** One day: spend counters are fixed windows aligned to UTC midnight, so a cap is per calendar day (UTC). */
export const DAY_MS = 86_400_000;
