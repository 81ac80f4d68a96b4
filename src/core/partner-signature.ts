import { createHmac } from 'node:crypto';
import { constantTimeEqual } from './codes.js';

/**
 * Seed 000's request signature (decisions 17):
 *
 *   Signature = Base64(HMAC-SHA256(key = Base64-decode(EncryptKey), PartnerID + ":" + GetPlusID + ":" + Timestamp))
 *
 * HMAC per RFC 2104, Base64 per RFC 4648 §4 (standard alphabet, padded). Timestamp is Unix seconds and is
 * accepted within ±300 s of the server's clock.
 */

export const SIGNATURE_SKEW_SECONDS = 300;

/** An EncryptKey is 32 random bytes in standard Base64 (44 characters, one `=`). */
const ENCRYPT_KEY = /^[A-Za-z0-9+/]{43}=$/;
/** A Base64 HMAC-SHA256 value: 32 bytes, 44 characters. */
const SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;
const TIMESTAMP = /^\d{1,12}$/;

export function isEncryptKey(value: string): boolean {
  return ENCRYPT_KEY.test(value);
}

export function partnerSignature(encryptKey: string, partnerId: string, getPlusId: string, timestamp: number | string): string {
  if (!isEncryptKey(encryptKey)) throw new RangeError('EncryptKey must be 32 bytes in Base64');
  return createHmac('sha256', Buffer.from(encryptKey, 'base64')).update(`${partnerId}:${getPlusId}:${timestamp}`, 'utf8').digest('base64');
}

/** Constant-time check of a presented signature (standards V5); a malformed one is simply wrong. */
export function signatureMatches(encryptKey: string, partnerId: string, getPlusId: string, timestamp: string, presented: string): boolean {
  const expected = partnerSignature(encryptKey, partnerId, getPlusId, timestamp);
  return SIGNATURE.test(presented) && constantTimeEqual(expected, presented);
}

/** A Timestamp as sent (a string or a JSON number of Unix seconds), or undefined when it is not one. */
export function parseTimestamp(value: unknown): number | undefined {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !TIMESTAMP.test(text)) return undefined;
  return Number(text);
}

export function timestampFresh(timestamp: number, nowMs: number): boolean {
  return Math.abs(Math.floor(nowMs / 1000) - timestamp) <= SIGNATURE_SKEW_SECONDS;
}
