/**
 * SMS length: how many segments a text costs (3GPP TS 23.038 alphabets, TS 23.040 concatenation).
 *
 * A text made only of characters of the GSM 7-bit default alphabet (and its extension table, each of whose
 * characters takes an escape plus itself, so two septets) travels as GSM-7: 160 septets in one message,
 * 153 per part once it is split (the User Data Header of a concatenated message takes 7). Any other character
 * forces UCS-2 for the whole message: 70 UTF-16 code units in one message, 67 per part. An escape pair and a
 * surrogate pair are never split across two parts, so parts are filled greedily rather than by division.
 */

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SmsSegments {
  encoding: SmsEncoding;
  /** Parts the message is sent as (each billed as one SMS). */
  segments: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text. */
  units: number;
  /** Bytes of user data: septets packed 7 bits each, or 2 bytes per UCS-2 unit. */
  bytes: number;
}

/** The GSM 03.38 default alphabet, in table order (0x1B, the escape, is not a character of its own). */
const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ' + 'ÆæßÉ' + ' !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§' + '¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** The extension table: each is sent as ESC + character. */
const GSM_EXTENDED = '\f^{}\\[~]|€';

const BASIC = new Set(GSM_BASIC);
const EXTENDED = new Set(GSM_EXTENDED);

const GSM_SINGLE = 160;
const GSM_PART = 153;
const UCS2_SINGLE = 70;
const UCS2_PART = 67;

/** Septets a character takes in GSM-7, or undefined when it has no GSM-7 form. */
function septets(char: string): number | undefined {
  if (BASIC.has(char)) return 1;
  if (EXTENDED.has(char)) return 2;
  return undefined;
}

export function isGsm7(text: string): boolean {
  for (const char of text) if (septets(char) === undefined) return false;
  return true;
}

/** Fills parts of `capacity` units greedily with indivisible pieces. */
function countParts(pieces: number[], capacity: number): number {
  let parts = 1;
  let used = 0;
  for (const size of pieces) {
    if (used + size > capacity) {
      parts++;
      used = 0;
    }
    used += size;
  }
  return parts;
}

/** Septets of each ASCII character (0 where GSM-7 has none): the common case needs no Set lookups. */
const ASCII_SEPTETS = Uint8Array.from({ length: 128 }, (_, code) => septets(String.fromCharCode(code)) ?? 0);

export function smsSegments(text: string): SmsSegments {
  // Fast path: a single-part text of ASCII GSM characters (what the shipped templates and digits make).
  let units = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const size = code < 128 ? ASCII_SEPTETS[code]! : 0;
    if (size === 0) {
      units = -1;
      break;
    }
    units += size;
  }
  if (units >= 0 && units <= GSM_SINGLE) return { encoding: 'GSM-7', segments: 1, units, bytes: Math.ceil((units * 7) / 8) };
  return segmentsOf(text);
}

function segmentsOf(text: string): SmsSegments {
  const chars = [...text];
  if (chars.every((char) => septets(char) !== undefined)) {
    const pieces = chars.map((char) => septets(char)!);
    const units = pieces.reduce((sum, n) => sum + n, 0);
    const segments = units <= GSM_SINGLE ? 1 : countParts(pieces, GSM_PART);
    return { encoding: 'GSM-7', segments, units, bytes: Math.ceil((units * 7) / 8) };
  }
  // Code points outside the BMP are surrogate pairs: two units that must stay in one part.
  const pieces = chars.map((char) => char.length);
  const units = text.length;
  const segments = units <= UCS2_SINGLE ? 1 : countParts(pieces, UCS2_PART);
  return { encoding: 'UCS-2', segments, units, bytes: units * 2 };
}

/** The most segments otpd sends in one message: Twilio and most carriers refuse more than 10 parts. */
export const MAX_SMS_SEGMENTS = 10;

/** The Android SMS Retriever reads messages of at most 140 bytes (one SMS without concatenation). */
export const SMS_RETRIEVER_MAX_BYTES = 140;
