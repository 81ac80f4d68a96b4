import { CHANNELS, type Channel, isE164, isEmailAddress } from '../../../core/destination.js';
import { OtpdError } from '../../../errors.js';

/**
 * Request fields of seed 002 (the otp.plus flavour of otpgateway). Bodies arrive as multipart form-data
 * (the collection), urlencoded form or JSON, so every field is read here from one flat object and checked
 * with otpgateway's own wording ("invalid `ttl` value", "Invalid JSON in `extra`") plus the rule broken.
 * Fields otpgateway ignores on a route (`to` and `extra` on a check) are ignored here too.
 */

/** A 400 in the dialect's words that still names its field (decisions 9). */
export function fieldError(field: string, message: string): OtpdError {
  return new OtpdError('VALIDATION', message, { errors: [{ field, message }] });
}

/** Client-chosen ids: otpgateway requires at least 6 characters; otpd caps them and keeps them URL-safe. */
const CLIENT_ID = /^[\w.~@+=:,;!$*()'-]{6,128}$/;

export function clientIdOf(raw: string): string {
  if (raw.length < 6) throw fieldError('id', 'ID should be min 6 chars');
  if (!CLIENT_ID.test(raw)) {
    throw fieldError('id', "ID must be 6-128 characters of letters, digits and . _ ~ @ + = : , ; ! $ * ( ) ' -");
  }
  return raw;
}

type Body = Record<string, unknown>;

export function bodyOf(body: unknown): Body {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw fieldError('body', 'the body must be form fields or a JSON object');
  return body as Body;
}

const TEXT_MAX = 1_000;

/** A text field: absent and empty are the same (otpgateway reads `r.FormValue`, which gives "" for both). */
function text(body: Body, field: string, max = TEXT_MAX): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) throw fieldError(field, `\`${field}\` must be given once`);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') throw fieldError(field, `\`${field}\` must be text`);
  if (value.length > max) throw fieldError(field, `\`${field}\` must be at most ${max} characters`);
  return value === '' ? undefined : value;
}

function integer(body: Body, field: string, min: number, max: number): number | undefined {
  const raw = text(body, field, 20);
  if (raw === undefined) return undefined;
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw fieldError(field, `invalid \`${field}\` value: must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function bool(body: Body, field: string): boolean {
  const raw = text(body, field, 10);
  if (raw === undefined) return false;
  const value = raw.trim().toLowerCase();
  // Go's strconv.ParseBool, which otpgateway uses for skip_delete.
  if (['1', 't', 'true'].includes(value)) return true;
  if (['0', 'f', 'false'].includes(value)) return false;
  throw fieldError(field, `invalid \`${field}\` value: must be true or false`);
}

/**
 * Provider names a stock otpgateway client may send, and the channel each means. `provider` is echoed as
 * given; otpd's own delivery provider is the app's `deliveryProvider` setting, whatever is named here.
 */
const PROVIDER_CHANNELS: Record<string, Channel> = {
  sms: 'sms',
  email: 'email',
  voice: 'voice',
  whatsapp: 'whatsapp',
  smtp: 'email',
  solsms: 'sms',
  pinpoint: 'sms',
  kaleyra: 'sms',
};

function channelOfProvider(provider: string): Channel | undefined {
  const name = provider.toLowerCase();
  if (Object.hasOwn(PROVIDER_CHANNELS, name)) return PROVIDER_CHANNELS[name];
  // Hosted otp.plus names its providers after vendor and channel, as in `msg91_sms_lucglo`.
  const parts = name.split(/[_\-.]/);
  return CHANNELS.find((channel) => parts.includes(channel)) ?? (parts.includes('smtp') || parts.includes('mail') ? 'email' : undefined);
}

const EXTRA_MAX_BYTES = 4096;

function extraOf(body: Body): unknown {
  const value = body.extra;
  if (value === undefined || value === null || value === '') return {};
  // A JSON body may carry `extra` as an object instead of a JSON string.
  if (typeof value === 'object' && !Array.isArray(value)) {
    if (Buffer.byteLength(JSON.stringify(value)) > EXTRA_MAX_BYTES) throw fieldError('extra', `\`extra\` must be at most ${EXTRA_MAX_BYTES} bytes of JSON`);
    return value;
  }
  const raw = text(body, 'extra', EXTRA_MAX_BYTES);
  if (raw === undefined) return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch (error) {
    throw fieldError('extra', `Invalid JSON in \`extra\`: ${error instanceof Error ? error.message : 'not JSON'}`);
  }
}

/**
 * `to` as otpd sends to it: an E.164 number, with the `+` added when the client left it off (decisions 14:
 * `14084446640` is read as +14084446640) and common separators dropped, or an email address.
 */
function destinationOf(to: string): string {
  const trimmed = to.trim();
  if (/^\+?[\d\s().-]+$/.test(trimmed)) {
    const digits = trimmed.replace(/[\s().-]/g, '');
    const e164 = digits.startsWith('+') ? digits : `+${digits}`;
    if (isE164(e164)) return e164;
  } else if (isEmailAddress(trimmed)) {
    return trimmed;
  }
  throw fieldError('to', 'invalid `to` address: must be a phone number in international format (country code and 8-15 digits, + optional) or an email address');
}

export interface PutFields {
  to: string;
  destination: string;
  channel: Channel;
  provider: string;
  ttl?: number;
  maxAttempts?: number;
  channelDescription: string;
  addressDescription: string;
  extra: unknown;
  /** A caller-chosen code (stock otpgateway's `otp` on PUT). */
  otp?: string;
}

/** `PUT /api/otp/:id`: create (and send) a verification. */
export function putFields(raw: unknown): PutFields {
  const body = bodyOf(raw);
  // Stock otpgateway lets the caller choose the code; otpd allows it only where the app's `callerCodes`
  // setting is on (checked by the route, which knows the app).
  const otp = text(body, 'otp', 64)?.trim();
  if (otp !== undefined && !/^\d{4,10}$/.test(otp)) throw fieldError('otp', 'invalid `otp` value: must be 4 to 10 digits');
  const to = text(body, 'to', 320);
  if (to === undefined) throw fieldError('to', 'invalid `to` address: `to` is required (the phone number or email address to send the OTP to)');
  const destination = destinationOf(to);
  const provider = text(body, 'provider', 100)?.trim();
  let channel: Channel;
  if (provider === undefined || provider === '') {
    // decisions 14: a missing provider is chosen from `to`.
    channel = destination.includes('@') ? 'email' : 'sms';
  } else {
    const fromProvider = channelOfProvider(provider);
    if (!fromProvider) throw fieldError('provider', `unknown provider: use one of ${Object.keys(PROVIDER_CHANNELS).join(', ')}, or leave it out to choose from \`to\``);
    channel = fromProvider;
  }
  const ttl = integer(body, 'ttl', 30, 86_400);
  const maxAttempts = integer(body, 'max_attempts', 1, 20);
  bool(body, 'skip_delete');
  return {
    to: to.trim(),
    destination,
    channel,
    provider: provider || channel,
    ...(ttl === undefined ? {} : { ttl }),
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    channelDescription: text(body, 'channel_description', 500) ?? '',
    addressDescription: text(body, 'address_description', 500) ?? '',
    extra: extraOf(body),
    ...(otp === undefined ? {} : { otp }),
  };
}

export interface CheckFields {
  otp: string;
  keep: boolean;
}

/** `POST /api/otp/:id`: `action=check` (the default, as otpgateway's API has no other) with `otp`. */
export function checkFields(raw: unknown): CheckFields {
  const body = bodyOf(raw);
  const action = text(body, 'action', 20);
  if (action !== undefined && action !== 'check') throw fieldError('action', 'invalid `action` value: the API supports only `check` (resend is on the hosted page)');
  const otp = text(body, 'otp', 64);
  if (otp === undefined) throw fieldError('otp', '`otp` is empty');
  return { otp: otp.trim(), keep: bool(body, 'skip_delete') };
}
