import { isEmailAddress, isE164 } from '../../../core/destination.js';
import { UserOtpFailure } from './errors.js';

/** Seed 003's body rules. Each failure names its field and rule, as decisions 16 asks. */

const EMAIL_MAX = 320;
const PHONE_MAX_DIGITS = 15;
const USER_ID_MAX = 128;
// Printable, no control characters: a user id is echoed into nothing, but logs and records should stay clean.
const USER_ID = /^[^\u0000-\u001f\u007f]+$/;
const OTP = /^\d{4,10}$/;

type Body = Record<string, unknown>;

/** The fields that make a `POST /v1/otp` body a seed-003 one (when no seed-001 field is present). */
export const FIELDS_003 = ['userId', 'UserId', 'email', 'phoneNumber'] as const;

export function asObject(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UserOtpFailure('body: must be a JSON object');
  return body as Body;
}

/** `userId`, or `UserId` as the seed's property table spells it. */
export function userIdOf(body: Body): string {
  const value = body.userId ?? body.UserId;
  if (value === undefined || value === null || value === '') throw new UserOtpFailure('userId: is required');
  if (typeof value !== 'string' || value.length > USER_ID_MAX || !USER_ID.test(value)) {
    throw new UserOtpFailure(`userId: must be a string of 1 to ${USER_ID_MAX} printable characters`);
  }
  return value;
}

/** The address a generate sends to, and the field it came from: exactly one of `email` and `phoneNumber`. */
export function destinationOf(body: Body): { field: 'email' | 'phoneNumber'; to: string } {
  const hasEmail = body.email !== undefined && body.email !== null;
  const hasPhone = body.phoneNumber !== undefined && body.phoneNumber !== null;
  if (hasEmail && hasPhone) throw new UserOtpFailure('phoneNumber: give either email or phoneNumber, not both');
  if (hasEmail) {
    const email = body.email;
    if (typeof email !== 'string') throw new UserOtpFailure('email: must be a string');
    if (email.length > EMAIL_MAX) throw new UserOtpFailure(`email: must be at most ${EMAIL_MAX} characters`);
    if (!isEmailAddress(email.trim())) throw new UserOtpFailure('email: must be an email address such as name@example.com');
    return { field: 'email', to: email.trim() };
  }
  if (hasPhone) {
    const phone = body.phoneNumber;
    if (typeof phone !== 'string') throw new UserOtpFailure('phoneNumber: must be a string');
    if (!phone.startsWith('+')) throw new UserOtpFailure('phoneNumber: must start with + and the country code');
    const digits = phone.slice(1);
    if (!/^\d+$/.test(digits)) throw new UserOtpFailure('phoneNumber: must be + followed by digits only');
    if (digits.length > PHONE_MAX_DIGITS) throw new UserOtpFailure(`phoneNumber: must have at most ${PHONE_MAX_DIGITS} digits after the +`);
    if (!isE164(phone)) throw new UserOtpFailure('phoneNumber: must be an E.164 number: + then 8 to 15 digits, not starting with 0');
    return { field: 'phoneNumber', to: phone };
  }
  throw new UserOtpFailure('email: give email or phoneNumber');
}

/** The code of a verify: digits as a string (a JSON integer is accepted and written out). */
export function otpOf(body: Body): string {
  const value = body.otp;
  if (value === undefined || value === null || value === '') throw new UserOtpFailure('otp: is required');
  const text = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
  if (typeof text !== 'string' || !OTP.test(text)) throw new UserOtpFailure('otp: must be a string of 4 to 10 digits');
  return text;
}
