import type { FastifyRequest } from 'fastify';
import { OtpdError } from '../../../errors.js';
import type { Services } from '../../../services/index.js';

interface Credentials {
  key: string;
  /** The namespace a Basic client names; it must be the key's app (otpgateway's `namespace:secret`). */
  namespace?: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Seed 002 sends `X-API-Key: KEY` (the otp.plus flavour); stock otpgateway clients send HTTP Basic
 * `namespace:key` (RFC 7617); `Authorization: Bearer KEY` works as on the native API.
 */
function credentialsOf(request: FastifyRequest): Credentials | undefined {
  const xApiKey = request.headers['x-api-key'];
  if (typeof xApiKey === 'string' && xApiKey.length > 0) return { key: xApiKey };
  const header = request.headers.authorization;
  if (!header) return undefined;
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (basic) {
    const payload = basic[1]!;
    if (!BASE64.test(payload)) throw new OtpdError('UNAUTHORIZED', 'invalid Base64 value in Basic Authorization header');
    const decoded = Buffer.from(payload, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0 || colon === decoded.length - 1) throw new OtpdError('UNAUTHORIZED', 'invalid value in Basic Authorization header: expected namespace:key');
    return { namespace: decoded.slice(0, colon), key: decoded.slice(colon + 1) };
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return bearer ? { key: bearer[1]! } : undefined;
}

/** An onRequest hook: a live key of the namespace's app, within its hourly quota (403 past it). */
export function authenticate(services: Services) {
  return async function authenticate002(request: FastifyRequest): Promise<void> {
    const credentials = credentialsOf(request);
    if (!credentials) throw new OtpdError('UNAUTHORIZED', 'missing API key: send X-API-Key: KEY, or HTTP Basic authorization namespace:key');
    const principal = await services.apps.authenticate(credentials.key);
    if (!principal || (credentials.namespace !== undefined && credentials.namespace !== principal.app.name)) {
      throw new OtpdError('UNAUTHORIZED', 'invalid API credentials');
    }
    await services.apps.consumeQuota(principal);
    request.principal = principal;
  };
}
