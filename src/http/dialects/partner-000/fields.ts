import { parseTimestamp } from '../../../core/partner-signature.js';
import type { SignedRequest } from '../../../services/partner.js';
import { badField } from './errors.js';

/** Reading seed 000's fields from a JSON body or a query string, each failure naming its field (ErrorCode 40001). */

type Fields = Record<string, unknown>;

const ID_MAX = 128;
const OTP = /^\d{4,10}$/;

export function fieldsOf(source: unknown): Fields {
  if (typeof source !== 'object' || source === null || Array.isArray(source)) throw badField('body', 'must be a JSON object');
  return source as Fields;
}

export function idField(fields: Fields, name: string): string {
  const value = fields[name];
  if (value === undefined || value === null || value === '') throw badField(name, 'is required');
  if (typeof value !== 'string' || value.length > ID_MAX || /[\u0000-\u001f\u007f]/.test(value)) throw badField(name, `must be a string of 1 to ${ID_MAX} printable characters`);
  return value;
}

export function signedRequestOf(fields: Fields): SignedRequest {
  const partnerId = idField(fields, 'PartnerID');
  const getPlusId = idField(fields, 'GetPlusID');
  const rawSignature = fields.Signature;
  if (rawSignature === undefined || rawSignature === null || rawSignature === '') throw badField('Signature', 'is required');
  if (typeof rawSignature !== 'string' || rawSignature.length > 128) throw badField('Signature', 'must be the Base64 HMAC-SHA256 signature');
  if (fields.Timestamp === undefined || fields.Timestamp === null || fields.Timestamp === '') throw badField('Timestamp', 'is required');
  const timestamp = parseTimestamp(fields.Timestamp);
  if (timestamp === undefined) throw badField('Timestamp', 'must be Unix time in seconds, such as 1662092274');
  // A `+` left unescaped in a query string arrives as a space; Base64 never contains spaces.
  return { partnerId, getPlusId, timestamp, signature: rawSignature.replace(/ /g, '+') };
}

export function otpField(fields: Fields): string {
  const value = fields.OTP;
  if (value === undefined || value === null || value === '') throw badField('OTP', 'is required');
  const text = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
  if (typeof text !== 'string' || !OTP.test(text)) throw badField('OTP', 'must be a string of 4 to 10 digits');
  return text;
}
