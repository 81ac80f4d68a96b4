import type { FastifyPluginAsync } from 'fastify';
import { runWithRequestContext, type RequestContext } from '../services/rate-limiter.js';

/**
 * Runs every request inside its rate-limit context (src/services/rate-limiter.ts), so services reached
 * through any dialect see the client address and the API key without each route passing them: the
 * per-IP and per-key limits then hold on every surface. Read lazily: the key is known only once the
 * route's authentication has run. `request.ip` follows OTPD_TRUST_PROXY (decisions 12).
 *
 * A callback hook wrapping `done` (as @fastify/request-context does), so everything fastify runs after it
 * for this request — later hooks, validation, the handler — continues inside the context.
 */
const requestContext: FastifyPluginAsync = async (app) => {
  app.addHook('onRequest', (request, _reply, done) => {
    const context: RequestContext = {
      get ip() {
        return request.ip;
      },
      get keyId() {
        return request.principal?.keyId;
      },
      userAgent: typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'].slice(0, 256) : undefined,
      requestId: request.id,
    };
    runWithRequestContext(context, done);
  });
};

(requestContext as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default requestContext;
