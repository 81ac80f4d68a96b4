import type { FastifyReply, FastifyRequest } from 'fastify';
import { OtpdError } from '../errors.js';
import type { Principal } from '../services/apps.js';
import type { Services } from '../services/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The app and key behind the request's API key, set by `requireApiKey`. */
    principal: Principal | null;
  }
}

/** The API key of a request: `Authorization: Bearer KEY` or `X-API-Key: KEY`. */
export function apiKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  const xApiKey = request.headers['x-api-key'];
  return typeof xApiKey === 'string' && xApiKey.length > 0 ? xApiKey : undefined;
}

/** A preHandler that admits only requests with a live API key within its quota, and records whose it is. */
export function requireApiKey(services: Services) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const apiKey = apiKeyOf(request);
    if (!apiKey) throw new OtpdError('UNAUTHORIZED', 'send your API key as "Authorization: Bearer KEY" or "X-API-Key: KEY"');
    const principal = await services.apps.authenticate(apiKey);
    if (!principal) throw new OtpdError('UNAUTHORIZED', 'this API key is unknown or revoked');
    await services.apps.consumeQuota(principal);
    request.principal = principal;
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new OtpdError('UNAUTHORIZED');
  return request.principal;
}
