import type { FastifyRequest } from 'fastify';

/** Query parameters whose values are codes, keys or secrets somewhere in otpd's dialects. */
const SECRET_PARAMS = /^(otp|code|generatedotp|encodedkey|encryptkey|signature|apikey|api_key|secret|client_secret|token|access_token)$/i;

/**
 * A URL fit for a log line: secret query values and the `/codes/{code}/` path segment (seed 004) are
 * replaced by `***`, so no code or key reaches the logs (standards O3).
 */
export function safeUrl(url: string): string {
  const question = url.indexOf('?');
  const path = (question === -1 ? url : url.slice(0, question)).replace(/\/codes\/[^/]+/i, '/codes/***');
  if (question === -1) return path;
  const params = url
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      const name = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, ' '));
      return SECRET_PARAMS.test(name) ? `${pair.slice(0, eq)}=***` : pair;
    });
  return `${path}?${params.join('&')}`;
}

export function requestLogFields(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: safeUrl(request.url), ip: request.ip };
}

/** pino paths never written: credentials in headers and any field that may hold a code or secret. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.code',
  '*.otp',
  '*.secret',
  '*.apiKey',
  '*.password',
];
