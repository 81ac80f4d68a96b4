import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
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
    runWithRequestContext(new HttpRequestContext(request), done);
  });
};

/** A class rather than an object literal with getters: no closures to make for every request. */
class HttpRequestContext implements RequestContext {
  readonly requestId: string;

  constructor(private readonly request: FastifyRequest) {
    this.requestId = request.id;
  }

  get ip(): string {
    return this.request.ip;
  }

  get keyId(): string | undefined {
    return this.request.principal?.keyId;
  }

  get userAgent(): string | undefined {
    const userAgent = this.request.headers['user-agent'];
    return typeof userAgent === 'string' ? userAgent.slice(0, 256) : undefined;
  }
}

(requestContext as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default requestContext;
