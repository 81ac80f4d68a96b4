import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/rate-limits.js';

const MAX_USER_AGENT = 256;

/**
 * Who is asking, as every route hands it to the services: per-key and per-IP rate limits
 * (src/core/rate-limits.ts) and the audit log (src/services/audit.ts) read it. Passed explicitly rather
 * than kept in an AsyncLocalStorage: an active one makes V8 run promise hooks for every promise of the
 * process, several µs of CPU per request.
 *
 * Call it once the route's authentication has run — a preHandler (native API), an onRequest hook
 * (seed 002) or the handler itself (the keyless dialects) — since `keyId` comes from the principal it
 * sets. `request.ip` follows OTPD_TRUST_PROXY (decisions 12).
 */
export function contextOf(request: FastifyRequest): RequestContext {
  const userAgent = request.headers['user-agent'];
  return {
    ip: request.ip,
    keyId: request.principal?.keyId,
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT) : undefined,
    requestId: request.id,
  };
}
