import { invalid, OtpdError } from '../errors.js';
import { CHANNELS, type Channel } from './destination.js';

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
}

type SettingDefinition =
  | { type: 'integer'; min: number; max: number; default: number; nullable?: false; description: string }
  | { type: 'integer'; min: number; max: number; default: number | null; nullable: true; description: string }
  /** `productionDefault`: the default for apps created with NODE_ENV=production, where it differs. */
  | { type: 'boolean'; default: boolean; productionDefault?: boolean; description: string }
  | { type: 'string'; default: string; check?: (value: string) => string | undefined; description: string }
  | { type: 'list'; default: string[]; items?: readonly string[]; check?: (value: string) => string | undefined; description: string };

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

export const SETTINGS: { readonly [K in keyof AppSettings]: SettingDefinition } = {
  codeLength: { type: 'integer', min: 4, max: 10, default: 6, description: 'digits in a sent code' },
  ttl: { type: 'integer', min: 30, max: 86_400, default: 600, description: 'seconds a sent code stays valid' },
  maxAttempts: { type: 'integer', min: 1, max: 20, default: 5, description: 'wrong codes allowed per verification before it locks' },
  maxSends: { type: 'integer', min: 1, max: 20, default: 5, description: 'sends (first send plus resends) per verification' },
  resendCooldown: { type: 'integer', min: 0, max: 3_600, default: 30, description: 'seconds between two sends of one verification' },
  channels: { type: 'list', items: CHANNELS, default: [...CHANNELS], description: 'channels this app may send on' },
  deliveryProvider: { type: 'string', default: 'log', description: 'provider that sends this app\'s messages' },
  apiCallsPerHour: { type: 'integer', min: 1, max: 100_000_000, default: null, nullable: true, description: 'API calls allowed per API key per hour (unset: unlimited)' },
  echoCode: { type: 'boolean', default: true, description: 'dialects whose documented contract returns the code do so (seed 002, 001)' },
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
};

export type SettingKey = keyof AppSettings;

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key);
}

/** Defaults of a new app; `production` picks each setting's `productionDefault` where it has one. */
export function defaultSettings(production = false): AppSettings {
  const out: Record<string, unknown> = {};
  for (const [key, definition] of Object.entries(SETTINGS) as [string, SettingDefinition][]) {
    if (production && definition.type === 'boolean' && definition.productionDefault !== undefined) out[key] = definition.productionDefault;
    else out[key] = Array.isArray(definition.default) ? [...definition.default] : definition.default;
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
      if (typeof value !== 'string' || value.length === 0) throw invalid(key, 'must be a non-empty string');
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
  else if (definition.type === 'list') value = text === '' ? [] : text.split(',').map((item) => item.trim()).filter(Boolean);
  return [key, validateSettingValue(key, value)];
}

/** Merges a partial update into settings, validating every given key. */
export function applySettings(base: AppSettings, changes: Record<string, unknown>): AppSettings {
  const next: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(changes)) next[key] = validateSettingValue(key, value);
  return next as unknown as AppSettings;
}

/** Reads stored settings, filling defaults for keys added since they were written. */
export function settingsFromStored(stored: Record<string, unknown>): AppSettings {
  return { ...defaultSettings(), ...stored } as AppSettings;
}
