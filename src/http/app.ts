import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import { newId } from '../core/ids.js';
import { OtpdError } from '../errors.js';
import type { Services } from '../services/index.js';
import callbacks from './callbacks/index.js';
import nhn004 from './dialects/nhn-004/index.js';
import otpgateway002 from './dialects/otpgateway-002/index.js';
import partner000 from './dialects/partner-000/index.js';
import v1Otp from './dialects/v1-otp.js';
import hostedPage from './pages/index.js';
import { accessLogOf } from '../logger.js';
import { lazyChildLogger, safeUrl } from './logging.js';
import metricsRoute from './metrics-route.js';
import openApi from './openapi.js';
import nativeApi from './native/index.js';
import health from './native/health.js';
import { sendProblem } from './problem.js';
import wellKnown from './well-known.js';
import gracefulClose from './graceful-close.js';
import securityHeaders from './security-headers.js';

export interface AppOptions {
  services: Services;
  logger: Logger;
  trustProxy: boolean;
  /** Base URL for links in answers (hosted page); known once the port is bound. */
  publicUrl: () => string;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;

/**
 * The HTTP application: native API, dialects and pages as plugins over the same services.
 * `server.ts` starts the process; tests build this directly through `test/helper.ts`.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One log line per request, written by the onResponse hook below with a URL cleaned of secrets.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: options.trustProxy,
    bodyLimit: 64 * 1024,
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    return503OnClosing: true,
    // Most requests never log through `request.log` (the access line below is written on its own): its child
    // logger is made on first use rather than for every request.
    childLoggerFactory: lazyChildLogger,
    genReqId: (request) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : newId('req');
    },
    ajv: {
      customOptions: {
        // Unknown fields are errors, not silently dropped; types are not coerced in bodies.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: true,
        useDefaults: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', null);

  // Hooks on every request take `done` rather than returning a promise: one less promise per hook and request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    done(null, payload);
  });
  const access = accessLogOf(options.logger);
  app.addHook('onResponse', (request, reply, done) => {
    access(request.id, request.method, safeUrl(request.url), request.ip, reply.statusCode, Math.round(reply.elapsedTime * 10) / 10);
    done();
  });

  app.setErrorHandler((error, request, reply) => sendProblem(request, reply, error));
  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, new OtpdError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  await app.register(gracefulClose);
  await app.register(securityHeaders, { publicUrl: options.publicUrl });
  // First: its onRoute hook documents every route registered after it (GET /openapi.json, /docs).
  await app.register(openApi, { publicUrl: options.publicUrl });
  await app.register(metricsRoute, { metrics: options.services.metrics });
  await app.register(health, { services: options.services });
  await app.register(nativeApi, { prefix: '/v1', services: options.services });
  await app.register(callbacks, { services: options.services, publicUrl: options.publicUrl });
  await app.register(v1Otp, { services: options.services });
  await app.register(partner000, { services: options.services });
  await app.register(nhn004, { services: options.services });
  await app.register(otpgateway002, { prefix: '/api', services: options.services, publicUrl: options.publicUrl });
  await app.register(hostedPage, { services: options.services });
  await app.register(wellKnown, { services: options.services });

  // Webhook delivery and retention run while the server does (not in CLI commands).
  app.addHook('onReady', async () => options.services.background.start());
  app.addHook('onClose', async () => options.services.background.stop());

  return app;
}
