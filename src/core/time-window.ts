/**
 * Seed 001's time-window codes, as pure functions: a code is not stored but derived from the request's
 * own fields, and it is valid while now ∈ [startTime, startTime + duration].
 *
 * The derivation is HMAC-SHA256 (RFC 2104) under the keyring's `time-window` subkey over a canonical
 * message of (app, mobile, channel, start, duration, digit); the service computes the MAC, this file turns
 * it into digits. The whole 256-bit MAC is read as an unsigned big-endian integer and reduced modulo
 * 10^digit. Its modulo bias is at most 10^digit / 2^256 < 2^-222 for 10 digits: negligible. HOTP's
 * dynamic truncation (RFC 4226 §5.3) keeps only 31 bits, whose bias would be large at 9 digits and which
 * cannot produce 10-digit codes at all (10^10 > 2^31), so it is not used here.
 */

/** Digits a seed-001 code may have. Fewer than 4 is guessable in a handful of tries; 10 is what fits a `digit` of the seed's size. */
export const TIME_WINDOW_MIN_DIGITS = 4;
export const TIME_WINDOW_MAX_DIGITS = 10;

/** How far ahead of now a window may start: a code for a window opening later is refused, so none can be stockpiled. */
export const TIME_WINDOW_MAX_LEAD_MS = 5 * 60_000;

export interface TimeWindow {
  appId: string;
  /** Ten digits, as the seed's DR rule asks. */
  mobile: string;
  channel: string;
  /** Epoch milliseconds of startTime (whole seconds). */
  startMs: number;
  /** Seconds. */
  duration: number;
  digit: number;
}

/** The bytes the MAC covers: versioned and newline-separated, so no two windows share a message. */
export function timeWindowMessage(window: TimeWindow): string {
  return ['otpd-time-window-v1', window.appId, window.mobile, window.channel, String(window.startMs / 1000), String(window.duration), String(window.digit)].join('\n');
}

/** `digit` decimal digits from a MAC, leading zeros kept (see the file comment for the bias bound). */
export function codeFromMac(mac: Uint8Array, digit: number): string {
  if (!Number.isInteger(digit) || digit < TIME_WINDOW_MIN_DIGITS || digit > TIME_WINDOW_MAX_DIGITS) throw new RangeError(`digit must be ${TIME_WINDOW_MIN_DIGITS}..${TIME_WINDOW_MAX_DIGITS}`);
  if (mac.length < 32) throw new RangeError('the MAC must have at least 256 bits');
  const value = BigInt('0x' + Buffer.from(mac).toString('hex'));
  return (value % 10n ** BigInt(digit)).toString().padStart(digit, '0');
}

export function windowEndMs(window: Pick<TimeWindow, 'startMs' | 'duration'>): number {
  return window.startMs + window.duration * 1000;
}

export type WindowState = 'not_started' | 'open' | 'ended';

/** Both ends inclusive, as the seed's "valid for `duration` seconds from `startTime`" reads. */
export function windowState(window: Pick<TimeWindow, 'startMs' | 'duration'>, now: number): WindowState {
  if (now < window.startMs) return 'not_started';
  return now <= windowEndMs(window) ? 'open' : 'ended';
}

// --- wall-clock start times ------------------------------------------------------------------------

const START_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

export type StartTimeResult = { ok: true; startMs: number } | { ok: false; reason: 'format' | 'calendar' | 'nonexistent' };

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The wall-clock reading of an instant in a zone, as if that reading were UTC (epoch ms). */
function wallClockAsUtc(epochMs: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(epochMs))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
}

/**
 * `YYYY-mm-dd HH:mm:ss` (DR-0003/0004: no other pattern) read as wall-clock time in `timeZone` (an IANA
 * zone, already validated by the app's settings). Impossible dates (2023-02-30) are `calendar`; a time
 * skipped by a daylight-saving change is `nonexistent`; a repeated one resolves to its first occurrence.
 */
export function parseStartTime(text: string, timeZone: string): StartTimeResult {
  const match = START_TIME.exec(text);
  if (!match) return { ok: false, reason: 'format' };
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(local);
  if (
    year < 1970 ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day
  ) {
    return { ok: false, reason: 'calendar' };
  }
  // Zone offsets change at most once within a day around any instant in real tzdata, so the offsets a day
  // before and a day after are the only candidates; keep those that read back as the requested time.
  const candidates = new Set<number>();
  for (const probe of [local - 86_400_000, local, local + 86_400_000]) candidates.add(local - (wallClockAsUtc(probe, timeZone) - probe));
  const matches = [...candidates].filter((instant) => wallClockAsUtc(instant, timeZone) === local);
  if (matches.length === 0) return { ok: false, reason: 'nonexistent' };
  return { ok: true, startMs: Math.min(...matches) };
}

/** `2022-12-12 19:07:30` in `timeZone`: how the seed writes times, for error details. */
export function formatWallClock(epochMs: number, timeZone: string): string {
  return new Date(wallClockAsUtc(epochMs, timeZone)).toISOString().slice(0, 19).replace('T', ' ');
}
