import { formatWallClock, parseStartTime, TIME_WINDOW_MAX_DIGITS, TIME_WINDOW_MIN_DIGITS } from '../../../core/time-window.js';
import type { WindowRequest } from '../../../services/time-window.js';
import { ruleFailure, type TimeWindowFailure } from './errors.js';

/**
 * Seed 001's request rules DR-0001 … DR-0007, checked in the seed's order; the first broken rule is the
 * answer. The rule ids differ between the two operations (VALIDATE inserts generatedOtp as DR-0002), so
 * each check names the id of the operation at hand.
 */

export const OPERATIONS = ['GENERATE', 'VALIDATE'] as const;
export type Operation = (typeof OPERATIONS)[number];
export const CHANNELS_001 = ['Digital', 'Partner', 'App', 'Brand'] as const;

/** Every field name seed 001 uses, its field-table spellings included: any of them selects the dialect (decisions 15). */
export const FIELDS_001 = ['operationType', 'operation_type', 'channel', 'startTime', 'start_time', 'duration', 'digit', 'mobile', 'mobile_no', 'generatedOtp'] as const;

export type ParsedRequest = { operation: Operation; window: WindowRequest; generatedOtp?: string };

type Body = Record<string, unknown>;

const RULES: Record<Operation, Record<'operationType' | 'generatedOtp' | 'channel' | 'startTime' | 'duration' | 'digit' | 'mobile', string>> = {
  GENERATE: { operationType: 'DR-0001', generatedOtp: 'DR-0002', channel: 'DR-0002', startTime: 'DR-0003', duration: 'DR-0004', digit: 'DR-0005', mobile: 'DR-0006' },
  VALIDATE: { operationType: 'DR-0001', generatedOtp: 'DR-0002', channel: 'DR-0003', startTime: 'DR-0004', duration: 'DR-0005', digit: 'DR-0006', mobile: 'DR-0007' },
};

class Conflict {
  constructor(readonly names: [string, string]) {}
}

/** The value under the seed's camelCase name or its field-table spelling; both given and different is a conflict. */
function read(body: Body, name: string, alias?: string): unknown {
  const value = body[name];
  if (alias === undefined || !(alias in body)) return value;
  const other = body[alias];
  if (value !== undefined && JSON.stringify(value) !== JSON.stringify(other)) return new Conflict([name, alias]);
  return value ?? other;
}

/** The operation only, for choosing the error body's key names before the rest is read. */
export function operationOf(body: unknown): Operation | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = read(body as Body, 'operationType', 'operation_type');
  return OPERATIONS.find((operation) => operation === value);
}

/** A string of digits, or a JSON number written out and left-padded to `width` digits (decisions 15). */
function digitString(value: unknown, width: number): string | undefined {
  if (typeof value === 'string') return /^\d+$/.test(value) ? value : undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value).padStart(width, '0');
  return undefined;
}

export function parseRequest(body: Body, timeZone: string): ParsedRequest | TimeWindowFailure {
  const rawOperation = read(body, 'operationType', 'operation_type');
  if (rawOperation === undefined || rawOperation === null) return ruleFailure(1001, 'DR-0001', 'operationType is required: GENERATE or VALIDATE');
  const operation = OPERATIONS.find((candidate) => candidate === rawOperation);
  if (!operation) {
    const why = rawOperation instanceof Conflict ? 'operationType and operation_type differ; ' : '';
    return ruleFailure(1002, 'DR-0001', `${why}operationType must be GENERATE or VALIDATE`);
  }
  const rule = RULES[operation];
  const conflict = (value: unknown) => (value instanceof Conflict ? `${value.names[0]} and ${value.names[1]} differ; ` : '');

  let generatedOtpText: string | undefined;
  if (operation === 'VALIDATE') {
    const raw = body.generatedOtp;
    if (raw === undefined || raw === null || raw === '') return ruleFailure(7001, rule.generatedOtp, 'generatedOtp is required for VALIDATE');
    generatedOtpText = digitString(raw, 0);
    if (generatedOtpText === undefined) return ruleFailure(7002, rule.generatedOtp, 'generatedOtp must be a number of `digit` digits');
  }

  const channel = read(body, 'channel');
  if (channel === undefined || channel === null) return ruleFailure(2001, rule.channel, `channel is required: one of ${CHANNELS_001.join(', ')}`);
  if (!CHANNELS_001.some((allowed) => allowed === channel)) return ruleFailure(2002, rule.channel, `channel must be one of ${CHANNELS_001.join(', ')}`);

  const startTime = read(body, 'startTime', 'start_time');
  if (startTime === undefined || startTime === null) return ruleFailure(3001, rule.startTime, 'startTime is required, as YYYY-mm-dd HH:mm:ss');
  if (typeof startTime !== 'string') return ruleFailure(3002, rule.startTime, `${conflict(startTime)}startTime must be a string in YYYY-mm-dd HH:mm:ss format, such as 2022-12-12 19:04:30`);
  const start = parseStartTime(startTime, timeZone);
  if (!start.ok) {
    if (start.reason === 'format') return ruleFailure(3002, rule.startTime, 'startTime must be in YYYY-mm-dd HH:mm:ss format, such as 2022-12-12 19:04:30');
    if (start.reason === 'calendar') return ruleFailure(3003, rule.startTime, `startTime ${startTime} is not a valid date and time`);
    return ruleFailure(3004, rule.startTime, `startTime ${startTime} does not exist in time zone ${timeZone} (a daylight-saving change skips it)`);
  }

  const duration = read(body, 'duration');
  if (duration === undefined || duration === null) return ruleFailure(4001, rule.duration, 'duration is required: an integer number of seconds');
  if (typeof duration !== 'number' || !Number.isInteger(duration)) return ruleFailure(4002, rule.duration, 'duration must be an integer (seconds)');
  if (duration < 1) return ruleFailure(4003, rule.duration, 'duration must be at least 1 second');

  const digit = read(body, 'digit');
  if (digit === undefined || digit === null) return ruleFailure(5001, rule.digit, `digit is required: an integer from ${TIME_WINDOW_MIN_DIGITS} to ${TIME_WINDOW_MAX_DIGITS}`);
  if (typeof digit !== 'number' || !Number.isInteger(digit)) return ruleFailure(5002, rule.digit, 'digit must be an integer');
  if (digit < TIME_WINDOW_MIN_DIGITS || digit > TIME_WINDOW_MAX_DIGITS) return ruleFailure(5003, rule.digit, `digit must be from ${TIME_WINDOW_MIN_DIGITS} to ${TIME_WINDOW_MAX_DIGITS}`);

  const rawMobile = read(body, 'mobile', 'mobile_no');
  if (rawMobile === undefined || rawMobile === null || rawMobile === '') return ruleFailure(6001, rule.mobile, 'mobile is required: a 10 digit number');
  const mobile = digitString(rawMobile, 10);
  if (mobile === undefined || mobile.length !== 10) return ruleFailure(6002, rule.mobile, `${conflict(rawMobile)}mobile must be a 10 digit number`);

  const window: WindowRequest = { mobile, channel: channel as string, startMs: start.startMs, duration, digit };
  if (operation === 'GENERATE') return { operation, window };

  // generatedOtp's length is only known once digit is; it is still generatedOtp's rule that fails.
  const generatedOtp = typeof body.generatedOtp === 'number' ? generatedOtpText!.padStart(digit, '0') : generatedOtpText!;
  if (generatedOtp.length !== digit) return ruleFailure(7002, rule.generatedOtp, `generatedOtp must be a number of ${digit} digits (digit)`);
  return { operation, window, generatedOtp };
}

/** `2022-12-12 19:07:30 (Asia/Kolkata)`: times in details, as the caller wrote them. */
export function describeTime(epochMs: number, timeZone: string): string {
  return `${formatWallClock(epochMs, timeZone)} (${timeZone})`;
}
