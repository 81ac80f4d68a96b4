import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../core/codes.js';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, spec "Signature scheme"): the signed
 * content is `webhook-id.webhook-timestamp.body`, the signature HMAC-SHA256 under the secret, sent as
 * `webhook-signature: v1,BASE64` (several space-separated during a secret rotation). A secret is written
 * `whsec_` + Base64 of its bytes; the key is those bytes.
 */
export const SECRET_PREFIX = 'whsec_';
/** Receivers refuse messages whose timestamp is further than this from their clock (replay window). */
export const TIMESTAMP_TOLERANCE_S = 300;

export function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** Whether a configured secret has the `whsec_` + Base64 form with at least 24 bytes of key. */
export function secretProblem(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return `must start with ${SECRET_PREFIX} followed by Base64 (e.g. whsec_ + \`openssl rand -base64 32\`)`;
  const body = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return `must be ${SECRET_PREFIX} followed by Base64`;
  if (Buffer.from(body, 'base64').length < 24) return 'must hold at least 24 bytes of key (32 recommended)';
  return undefined;
}

export function sign(secret: string, id: string, timestampS: number, body: string): string {
  return 'v1,' + createHmac('sha256', secretBytes(secret)).update(`${id}.${timestampS}.${body}`, 'utf8').digest('base64');
}

export function signedHeaders(secret: string, id: string, timestampS: number, body: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': sign(secret, id, timestampS, body) };
}

/** Why a request's signature does not hold, or undefined when it does. */
export function verifyProblem(secret: string, headers: Record<string, string | undefined>, body: string, nowS: number): string | undefined {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) return 'webhook-id, webhook-timestamp and webhook-signature are required';
  if (!/^\d{1,12}$/.test(timestamp)) return 'webhook-timestamp must be Unix seconds';
  if (Math.abs(nowS - Number(timestamp)) > TIMESTAMP_TOLERANCE_S) return `webhook-timestamp is more than ${TIMESTAMP_TOLERANCE_S} s away from now`;
  const expected = sign(secret, id, Number(timestamp), body);
  const match = signatures.split(' ').some((candidate) => candidate.startsWith('v1,') && constantTimeEqual(candidate, expected));
  return match ? undefined : 'no webhook-signature matches';
}
