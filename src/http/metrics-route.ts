import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { isOtpdError, OtpdError, type ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { problemResponses } from './schemas.js';

/** Errors that mean "refused by a limit", counted in otpd_rate_limit_hits_total{limit}. */
const LIMIT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['RATE_LIMITED', 'QUOTA_EXCEEDED', 'RESEND_COOLDOWN', 'MAX_SENDS', 'FACTOR_LOCKED']);

const LIMIT_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

/** Constant-time comparison of a presented token with the configured one (hashing first hides the length). */
function tokenMatches(presented: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * `GET /metrics` (Prometheus text format) plus the root hooks that count every HTTP answer. Registered
 * without encapsulation (like fastify-plugin does) so the hooks see the routes of every other plugin.
 * The route needs no API key; OTPD_METRICS_TOKEN, when set, makes it require that bearer token.
 */
const metricsRoute: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, never the raw URL: ids in paths would make one series per request.
    const route = request.routeOptions.url ?? '(unmatched)';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });

  // Runs before any error handler, the dialects' own included, so every surface's limit refusals count.
  app.addHook('onError', async (_request, _reply, error) => {
    if (!isOtpdError(error) || !LIMIT_CODES.has(error.code)) return;
    // A limit that names itself (`limit: 'destination-cooldown'` on a RATE_LIMITED) is counted by that name.
    const named = error.extensions?.limit;
    metrics.rateLimitHits.inc({ limit: typeof named === 'string' && LIMIT_NAME.test(named) ? named.replace(/-/g, '_') : error.code.toLowerCase() });
  });

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition format 0.0.4. Needs no API key; when OTPD_METRICS_TOKEN is set it requires `Authorization: Bearer <token>`. Under `otpd serve --workers N` the numbers are summed over all workers.',
        security: metrics.bearerToken === undefined ? [] : [{ metricsToken: [] }],
        response: {
          200: {
            description: 'metrics of this otpd (all workers)',
            content: { 'text/plain': { schema: { type: 'string', examples: ['# HELP otpd_http_requests_total HTTP requests answered, by method, route pattern and status code\n# TYPE otpd_http_requests_total counter\notpd_http_requests_total{method="POST",route="/v1/verifications",status="201"} 12\n'] } } },
          },
          ...problemResponses('UNAUTHORIZED', 'METRICS_UNAVAILABLE'),
        },
      },
    },
    async (request, reply) => {
      if (metrics.bearerToken !== undefined) {
        const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
        if (!match || !tokenMatches(match[1]!, metrics.bearerToken)) throw new OtpdError('UNAUTHORIZED', 'send the metrics token as "Authorization: Bearer TOKEN" (OTPD_METRICS_TOKEN)');
      }
      let text: string;
      try {
        text = await metrics.scrape();
      } catch (error) {
        throw new OtpdError('METRICS_UNAVAILABLE', `${error instanceof Error ? error.message : String(error)}`, { retryAfter: 1, cause: error });
      }
      return reply.type(metrics.contentType).send(text);
    },
  );
};

// The same marker fastify-plugin sets: hooks and routes land on the parent instance (the root).
(metricsRoute as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default metricsRoute;
