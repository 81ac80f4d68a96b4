import { invalid, OtpdError } from '../errors.js';
import { CHANNELS, isE164, isEmailAddress, type Channel } from './destination.js';
import {
  checkCountry,
  DEFAULT_CONVERSION_GUARD,
  parseConversionGuard,
  parsePrefixLimits,
  parsePrices,
  parseSpendCaps,
  type ConversionGuard,
  type PrefixLimitSettings,
  type PriceSettings,
  type SpendCapSettings,
} from './pumping.js';
import { DEFAULT_RATE_LIMITS, parseBuckets, parseRateLimits, type BucketSettings, type RateLimitSettings } from './rate-limits.js';

/**
 * One settings schema per app (decisions 6): every per-app knob is declared once in `SETTINGS`, with its
 * type, bounds, default and meaning. The CLI's `--set key=value`, the config file and the service all
 * validate through `parseSettingValue` / `validateSettings`, and docs/configuration.md lists the same table.
 */
export interface AppSettings {
  codeLength: number;
  ttl: number;
  maxAttempts: number;
  maxSends: number;
  resendCooldown: number;
  channels: Channel[];
  deliveryProvider: string;
  apiCallsPerHour: number | null;
  echoCode: boolean;
  callerCodes: boolean;
  keylessAccess: boolean;
  allowedOrigins: string[];
  timeZone: string;
  timeWindowMaxDuration: number;
  timeWindowSms: boolean;
  defaultCountryCode: string;
  signatureHelper: boolean;
  partnerOtpLimit: number;
  partnerOtpWindow: number;
  totpWindow: number;
  hotpLookAhead: number;
  defaultLocale: string;
  smsRoute: string[];
  emailRoute: string[];
  voiceRoute: string[];
  whatsappRoute: string[];
  testNumbers: string[];
  smsAppHash: string | null;
  rateLimits: RateLimitSettings;
  destinationCooldown: number;
  rateLimitBuckets: BucketSettings;
  allowedCountries: string[];
  prefixLimits: PrefixLimitSettings;
  prices: PriceSettings;
  dailySpendCap: SpendCapSettings;
  conversionGuard: ConversionGuard | null;
  webhookUrl: string | null;
  verificationRetentionDays: number | null;
  auditRetentionDays: number;
}

type SettingDefinition =
  | { type: 'integer'; min: number; max: number; default: number; nullable?: false; description: string }
  | { type: 'integer'; min: number; max: number; default: number | null; nullable: true; description: string }
  /** `productionDefault`: the default for apps created with NODE_ENV=production, where it differs. */
  | { type: 'boolean'; default: boolean; productionDefault?: boolean; description: string }
  | { type: 'string'; default: string; nullable?: false; check?: (value: string) => string | undefined; description: string }
  | { type: 'string'; default: string | null; nullable: true; check?: (value: string) => string | undefined; description: string }
  | { type: 'list'; default: string[]; items?: readonly string[]; check?: (value: string) => string | undefined; description: string }
  /** A JSON object (limits, price tables): `parse` validates it, naming the sub-field, and returns it normalised. */
  | { type: 'object'; default: unknown; productionDefault?: unknown; parse: (value: unknown, key: string) => unknown; description: string };

function checkTimeZone(value: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return undefined;
  } catch {
    return 'must be an IANA time zone such as UTC or Asia/Kolkata';
  }
}

function checkCountryCode(value: string): string | undefined {
  return /^\+[1-9]\d{0,3}$/.test(value) ? undefined : 'must be a country calling code: + and 1-4 digits, such as +91';
}

function checkOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    if ((url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value) return undefined;
  } catch {
    /* reported below */
  }
  return 'must be an origin such as https://example.com (scheme, host and optional port, no path)';
}

function checkLocale(value: string): string | undefined {
  return /^[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})*$/.test(value) ? undefined : 'must be a language tag such as en, pt-BR or hi';
}

/** A delivery route entry: a provider name, optionally after `channel:` to fall back to another channel. */
function checkRouteEntry(value: string): string | undefined {
  return /^(?:(?:sms|email|voice|whatsapp):)?[a-z0-9][a-z0-9_-]{0,62}$/.test(value)
    ? undefined
    : 'items must be provider names (lower-case letters, digits, - and _), optionally as channel:provider such as voice:twilio-main';
}

/** `destination=code`: a phone number or address that gets a fixed code and never reaches a provider. */
function checkTestNumber(value: string): string | undefined {
  const eq = value.lastIndexOf('=');
  const to = value.slice(0, eq);
  if (eq > 0 && (isE164(to) || isEmailAddress(to)) && /^\d{4,10}$/.test(value.slice(eq + 1))) return undefined;
  return 'items must be destination=code: an E.164 number or email address, then 4-10 digits (+15555550100=123456)';
}

function checkWebhookUrl(value: string): string | undefined {
  try {
    const url = new URL(value);
    if ((url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '' && url.hash === '') return undefined;
  } catch {
    /* reported below */
  }
  return 'must be an http:// or https:// URL without credentials or fragment (https in production: webhook bodies are signed, not encrypted)';
}

function checkAppHash(value: string): string | undefined {
  return /^[A-Za-z0-9+/]{11}$/.test(value) ? undefined : 'must be the 11-character app hash of the Android SMS Retriever API';
}

export const SETTINGS: { readonly [K in keyof AppSettings]: SettingDefinition } = {
  codeLength: { type: 'integer', min: 4, max: 10, default: 6, description: 'digits in a sent code' },
  ttl: { type: 'integer', min: 30, max: 86_400, default: 600, description: 'seconds a sent code stays valid' },
  maxAttempts: { type: 'integer', min: 1, max: 20, default: 5, description: 'wrong codes allowed per verification before it locks' },
  maxSends: { type: 'integer', min: 1, max: 20, default: 5, description: 'sends (first send plus resends) per verification' },
  resendCooldown: { type: 'integer', min: 0, max: 3_600, default: 30, description: 'seconds between two sends of one verification' },
  channels: { type: 'list', items: CHANNELS, default: [...CHANNELS], description: 'channels this app may send on' },
  deliveryProvider: { type: 'string', default: 'log', description: 'provider that sends this app\'s messages' },
  apiCallsPerHour: { type: 'integer', min: 1, max: 100_000_000, default: null, nullable: true, description: 'API calls allowed per API key per hour (unset: unlimited)' },
  callerCodes: { type: 'boolean', default: false, description: 'seed 002: a client may choose the code with `otp` on PUT, as stock otpgateway allows (off: every code comes from the CSPRNG, standards O1)' },
  echoCode: { type: 'boolean', default: true, productionDefault: false, description: 'dialects whose documented contract returns the code do so (seed 002, 001); off by default in production' },
  keylessAccess: { type: 'boolean', default: true, productionDefault: false, description: 'keyless dialects (seeds 001, 003) may act for this app without an API key (off by default in production, decisions 8)' },
  allowedOrigins: { type: 'list', default: [], check: checkOrigin, description: 'origins that may embed the hosted page and call it from a browser' },
  timeZone: { type: 'string', default: 'UTC', check: checkTimeZone, description: 'IANA time zone for wall-clock times in dialects (seed 001 startTime)' },
  timeWindowMaxDuration: { type: 'integer', min: 1, max: 86_400, default: 3_600, description: 'longest seed-001 time window (duration) accepted, in seconds' },
  timeWindowSms: { type: 'boolean', default: false, description: 'seed-001 GENERATE also sends the code by SMS to defaultCountryCode + mobile' },
  defaultCountryCode: { type: 'string', default: '+91', check: checkCountryCode, description: 'country calling code put before 10-digit national numbers (seed 001 mobile)' },
  signatureHelper: { type: 'boolean', default: true, productionDefault: false, description: 'seed-000 development helper that computes partner signatures (off by default in production)' },
  partnerOtpLimit: { type: 'integer', min: 1, max: 1_000, default: 3, description: 'seed-000 OTP requests allowed per GetPlusID per partnerOtpWindow' },
  partnerOtpWindow: { type: 'integer', min: 1, max: 86_400, default: 300, description: 'seconds of the seed-000 per-GetPlusID OTP request window' },
  totpWindow: { type: 'integer', min: 0, max: 10, default: 1, description: 'TOTP time steps of clock drift accepted each way (RFC 6238 §5.2)' },
  hotpLookAhead: { type: 'integer', min: 1, max: 100, default: 10, description: 'HOTP counters tried from the expected one on (RFC 4226 §7.4)' },
  defaultLocale: { type: 'string', default: 'en', check: checkLocale, description: 'message language when a verification names none (shipped: en, es, fr, de, pt, hi, ko, id)' },
  smsRoute: { type: 'list', default: [], check: checkRouteEntry, description: 'providers tried in order for SMS (failover); channel:provider switches channel, e.g. voice:twilio-main; empty: deliveryProvider' },
  emailRoute: { type: 'list', default: [], check: checkRouteEntry, description: 'providers tried in order for email; empty: deliveryProvider' },
  voiceRoute: { type: 'list', default: [], check: checkRouteEntry, description: 'providers tried in order for voice calls; empty: deliveryProvider' },
  whatsappRoute: { type: 'list', default: [], check: checkRouteEntry, description: 'providers tried in order for WhatsApp; empty: deliveryProvider' },
  testNumbers: { type: 'list', default: [], check: checkTestNumber, description: 'destination=code pairs that get that fixed code and never reach a provider (app store review, CI)' },
  smsAppHash: { type: 'string', default: null, nullable: true, check: checkAppHash, description: 'Android SMS Retriever app hash: SMS become "<#> text" + newline + hash' },
  // Abuse protection (docs/abuse-protection.md): src/core/rate-limits.ts and src/core/pumping.ts.
  rateLimits: { type: 'object', default: DEFAULT_RATE_LIMITS, parse: parseRateLimits, description: 'limit name → {max, windowSeconds} or null (off); names not given keep their default. Names: sends-per-destination (5/600), verifications-per-key, verifications-per-ip (100/3600, keyless requests), checks-per-key, checks-per-ip (300/3600, keyless requests), checks-per-verification' },
  destinationCooldown: { type: 'integer', min: 0, max: 3_600, default: 30, description: 'seconds after a send to a destination before a new verification may send to it (0: off; never longer than the sent code lives); resends keep resendCooldown' },
  rateLimitBuckets: { type: 'object', default: {}, parse: parseBuckets, description: 'caller buckets: name → {max, windowSeconds}; a create\'s rateLimits {name: value} counts against each (e.g. {"user_id": {"max": 3, "windowSeconds": 600}})' },
  allowedCountries: { type: 'list', default: [], check: checkCountry, description: 'ISO 3166-1 alpha-2 countries phone channels may send to (empty: all); a number of no known country is refused when set' },
  prefixLimits: { type: 'object', default: {}, parse: parsePrefixLimits, description: 'sends per E.164 prefix: prefix → {max, windowSeconds}, longest prefix wins; * applies to each country calling code (e.g. {"*": {"max": 200, "windowSeconds": 3600}})' },
  prices: { type: 'object', default: {}, parse: parsePrices, description: 'price of one message: channel → {prefix or *: price} (e.g. {"sms": {"+1": 0.0079, "*": 0.05}}); feeds dailySpendCap' },
  dailySpendCap: { type: 'object', default: {}, parse: parseSpendCaps, description: 'channel → most spent per UTC day at the prices setting (e.g. {"sms": 50}); sends past it are refused' },
  conversionGuard: { type: 'object', default: null, productionDefault: DEFAULT_CONVERSION_GUARD, parse: parseConversionGuard, description: 'blocks a prefix (prefixDigits digits) for blockSeconds when ≥ minSends sends within windowSeconds had under minApprovalRate approved; null: off. Production default {minSends 20, minApprovalRate 0.1, windowSeconds 3600, blockSeconds 3600, prefixDigits 5}' },
  // Audit log, webhooks and personal data (docs/audit-and-events.md).
  webhookUrl: { type: 'string', default: null, nullable: true, check: checkWebhookUrl, description: 'where signed webhook events (Standard Webhooks) are POSTed; the secret: otpd secrets webhook NAME' },
  verificationRetentionDays: { type: 'integer', min: 1, max: 3_650, default: null, nullable: true, description: 'days finished verifications are kept (unset: OTPD_RETENTION_DAYS, which is also the longest any app keeps them)' },
  auditRetentionDays: { type: 'integer', min: 1, max: 3_650, default: 365, description: 'days audit log entries are kept' },
};

export type SettingKey = keyof AppSettings;

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}

/** Defaults of a new app; `production` picks each setting's `productionDefault` where it has one. */
export function defaultSettings(production = false): AppSettings {
  const out: Record<string, unknown> = {};
  for (const [key, definition] of Object.entries(SETTINGS) as [string, SettingDefinition][]) {
    if (production && (definition.type === 'boolean' || definition.type === 'object') && definition.productionDefault !== undefined) out[key] = structuredClone(definition.productionDefault);
    else out[key] = structuredClone(definition.default);
  }
  return out as unknown as AppSettings;
}

/** Validates one value that is already typed (from JSON or a config file). Returns it normalised. */
export function validateSettingValue(key: string, value: unknown): unknown {
  if (!isSettingKey(key)) throw invalid(key, `is not a setting; known settings: ${Object.keys(SETTINGS).join(', ')}`);
  const definition: SettingDefinition = SETTINGS[key];
  switch (definition.type) {
    case 'integer': {
      if (value === null && definition.nullable) return null;
      if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(key, `must be an integer from ${definition.min} to ${definition.max}${definition.nullable ? ' (or null)' : ''}`);
      if (value < definition.min || value > definition.max) throw invalid(key, `must be from ${definition.min} to ${definition.max}`);
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(key, 'must be true or false');
      return value;
    case 'string': {
      if (value === null && definition.nullable) return null;
      if (typeof value !== 'string' || value.length === 0) throw invalid(key, `must be a non-empty string${definition.nullable ? ' (or null)' : ''}`);
      const problem = definition.check?.(value);
      if (problem) throw invalid(key, problem);
      return value;
    }
    case 'list': {
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) throw invalid(key, 'must be a list of strings');
      for (const item of value as string[]) {
        if (definition.items && !definition.items.includes(item)) throw invalid(key, `items must be among ${definition.items.join(', ')}`);
        const problem = definition.check?.(item);
        if (problem) throw invalid(key, problem);
      }
      return [...new Set(value as string[])];
    }
    case 'object':
      return definition.parse(value, key);
  }
}

/** Parses the text of a CLI `--set key=value` into the setting's type, then validates it. */
export function parseSettingAssignment(assignment: string): [SettingKey, unknown] {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new OtpdError('VALIDATION', `--set ${assignment}: expected key=value`);
  const key = assignment.slice(0, eq).trim();
  const text = assignment.slice(eq + 1).trim();
  if (!isSettingKey(key)) throw invalid(key, `is not a setting; known settings: ${Object.keys(SETTINGS).join(', ')}`);
  const definition: SettingDefinition = SETTINGS[key];
  let value: unknown = text;
  if (definition.type === 'integer') value = text === '' || text === 'null' ? null : /^-?\d+$/.test(text) ? Number(text) : text;
  else if (definition.type === 'boolean') value = text === 'true' ? true : text === 'false' ? false : text;
  else if (definition.type === 'string' && definition.nullable && (text === '' || text === 'null')) value = null;
  else if (definition.type === 'list') value = text === '' ? [] : text.split(',').map((item) => item.trim()).filter(Boolean);
  else if (definition.type === 'object') {
    try {
      value = JSON.parse(text);
    } catch {
      throw invalid(key, 'must be JSON, such as --set \'rateLimits={"checks-per-ip": {"max": 100, "windowSeconds": 3600}}\'');
    }
  }
  return [key, validateSettingValue(key, value)];
}

/** Merges a partial update into settings, validating every given key. */
export function applySettings(base: AppSettings, changes: Record<string, unknown>): AppSettings {
  const next: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(changes)) next[key] = validateSettingValue(key, value);
  return next as unknown as AppSettings;
}

/**
 * Reads stored settings, filling keys added since they were written. An app stores every setting when it is
 * created, so a missing key means a later release added it; whether the app was created in production is not
 * stored, so the filled value is the production default where a setting has one: the stricter of the two (a
 * new safety switch starts on for an upgraded production app, never off). A development app can turn it off.
 */
export function settingsFromStored(stored: Record<string, unknown>): AppSettings {
  return { ...defaultSettings(true), ...stored } as AppSettings;
}
