import { invalid } from '../errors.js';

export const CHANNELS = ['sms', 'email', 'voice', 'whatsapp'] as const;
export type Channel = (typeof CHANNELS)[number];

export type DestinationKind = 'phone' | 'email';

export interface Destination {
  kind: DestinationKind;
  /** Normalised form: E.164 for phones, lower-cased domain for email addresses. */
  value: string;
}

/** E.164: a plus sign and 8 to 15 digits, no leading zero in the country code. */
const E164 = /^\+[1-9]\d{7,14}$/;
/**
 * A practical address check (the WHATWG form rule, RFC 5321 length limits): one `@`, a dotted domain
 * of letters, digits and hyphens. Full RFC 5322 syntax admits addresses no mail provider delivers to.
 */
const EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$/;

export function isE164(value: string): boolean {
  return E164.test(value);
}

export function isEmailAddress(value: string): boolean {
  if (value.length > 254) return false;
  const at = value.lastIndexOf('@');
  return at > 0 && at <= 64 && EMAIL.test(value);
}

export function parseDestination(to: string, field = 'to'): Destination {
  const trimmed = to.trim();
  if (isE164(trimmed)) return { kind: 'phone', value: trimmed };
  if (isEmailAddress(trimmed)) {
    const at = trimmed.lastIndexOf('@');
    return { kind: 'email', value: trimmed.slice(0, at) + '@' + trimmed.slice(at + 1).toLowerCase() };
  }
  throw invalid(field, 'must be an E.164 phone number (+ and 8-15 digits) or an email address');
}

export function defaultChannelFor(destination: Destination): Channel {
  return destination.kind === 'email' ? 'email' : 'sms';
}

export function channelFits(channel: Channel, destination: Destination): boolean {
  return channel === 'email' ? destination.kind === 'email' : destination.kind === 'phone';
}

/** `+1******4567`, `a***@example.com`: enough for a person to recognise, too little to harvest. */
export function maskDestination(value: string): string {
  if (value.startsWith('+')) return value.slice(0, 2) + '*'.repeat(Math.max(0, value.length - 6)) + value.slice(-4);
  const at = value.lastIndexOf('@');
  if (at <= 0) return '***';
  return value[0] + '***' + value.slice(at);
}
