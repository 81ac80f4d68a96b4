import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyPluginAsync, FastifySchema } from 'fastify';
import { dialectDoc, dialectResponses } from './openapi-dialects.js';
import { NATIVE_COMMON_ERRORS, ProblemSchema, problemResponses } from './schemas.js';

/**
 * The OpenAPI 3.1 document at `GET /openapi.json` and the Swagger UI at `/docs`, generated from the route
 * schemas by @fastify/swagger. Registered before every other route (src/http/app.ts) so its onRoute hook
 * sees all of them, the routes other plugins add later included.
 *
 * Routes whose owners documented nothing still appear (with their path parameters); the transform below
 * adds what is true of a whole group of routes: a tag by path, and for native resources the API-key
 * security and the errors every authenticated route can answer with.
 */

export interface OpenApiOptions {
  /** Base URL for `servers` (known once the port is bound). */
  publicUrl: () => string;
}

/** package.json sits two levels up from both src/http/ and dist/http/. */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Tags by path, first match wins: native resources, operations, then each dialect by its paths. */
const TAGS: ReadonlyArray<{ name: string; description: string; match: RegExp }> = [
  { name: 'verifications', description: 'Native API: send a code and check it', match: /^\/v1\/verifications(\/|$)/ },
  { name: 'factors', description: 'Native API: TOTP/HOTP authenticator factors and recovery codes', match: /^\/v1\/factors(\/|$)/ },
  { name: 'subjects', description: 'Native API: an app’s users and their contact points', match: /^\/v1\/subjects(\/|$)/ },
  { name: 'audit', description: 'Native API: the app’s audit log (docs/audit-and-events.md)', match: /^\/v1\/audit$/ },
  { name: 'receipts', description: 'Public keys that verify signed approval receipts', match: /^\/\.well-known\// },
  { name: 'operations', description: 'Health, metrics and this document', match: /^\/(healthz|metrics|openapi\.json)$/ },
  { name: 'dialect 000', description: 'Seed 000: partner token and signed OTP API (docs/dialects.md)', match: /^\/(security|mobile)\// },
  { name: 'dialect 001/003', description: 'Seeds 001 and 003: `/v1/otp` and `/api/v1/otp` (docs/dialects.md)', match: /^(\/api)?\/v1\/otp(\/|$)/ },
  { name: 'dialect 002', description: 'Seed 002: otpgateway-compatible API under /api (docs/dialects.md)', match: /^\/api\// },
  { name: 'dialect 004', description: 'Seed 004: NHN Cloud OTP-compatible API (docs/dialects.md)', match: /^\/otp\/v1(\.0)?\/appkeys\// },
  { name: 'hosted page', description: 'The hosted code-entry page and its assets', match: /^\/(otp|static)\// },
  { name: 'provider callbacks', description: 'Delivery receipts posted by SMS/email providers', match: /^\/v1\/providers\/[^/]+\/callbacks$/ },
];
const NATIVE_TAGS = new Set(['verifications', 'factors', 'subjects', 'audit']);

export interface RouteEntry {
  method: string;
  url: string;
  hidden: boolean;
}

const inventories = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route registered after the OpenAPI plugin (tests compare it with the document). */
export function registeredRoutes(app: FastifyInstance): RouteEntry[] {
  return inventories.get(app) ?? [];
}

type RouteSchema = FastifySchema & { tags?: string[]; security?: unknown[]; hide?: boolean; response?: Record<string, unknown> };

type DocSchema = RouteSchema & { summary?: string; description?: string; consumes?: string[] };

function transform({ schema, url, route }: { schema: FastifySchema | undefined; url: string; route?: { method?: string | readonly string[] } }): { schema: FastifySchema; url: string } {
  const out: DocSchema = { ...(schema as DocSchema | undefined) };
  // Dialect routes and the hosted page carry no schema of their own (they parse and answer in their own
  // envelopes); their documentation comes from src/http/openapi-dialects.ts, here only, so it never
  // validates a request or serializes an answer. Whatever a route documented itself wins.
  const doc = dialectDoc(route?.method, url);
  if (doc) {
    out.summary ??= doc.summary;
    out.description ??= doc.description;
    if (doc.body && !out.body) out.body = doc.body;
    if (doc.querystring && !out.querystring) out.querystring = doc.querystring;
    if (doc.consumes && !out.consumes) out.consumes = doc.consumes;
    out.response = { ...dialectResponses(doc), ...out.response };
  }
  const tag = TAGS.find((candidate) => candidate.match.test(url))?.name ?? 'other';
  if (!out.tags || out.tags.length === 0) out.tags = [tag];
  if (NATIVE_TAGS.has(out.tags[0]!)) {
    out.security ??= [{ apiKey: [] }, { apiKeyHeader: [] }];
    // Only statuses the route did not document itself, so a route's own 404 description wins.
    const common = problemResponses(...NATIVE_COMMON_ERRORS);
    out.response = { ...Object.fromEntries(Object.entries(common).filter(([status]) => !out.response?.[status])), ...out.response };
  }
  return { schema: out, url };
}

const openApi: FastifyPluginAsync<OpenApiOptions> = async (app, options) => {
  const inventory: RouteEntry[] = [];
  inventories.set(app, inventory);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) inventory.push({ method, url: route.url, hidden: (route.schema as RouteSchema | undefined)?.hide === true });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'otpd',
        version: VERSION,
        summary: 'Self-hosted one-time-password server',
        description:
          'The native `/v1` API, the dialects of five public OTP APIs and the operations endpoints of one otpd. Native errors are RFC 9457 problem documents (`application/problem+json`); each dialect answers errors in its own documented envelope (docs/dialects.md).',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: TAGS.map(({ name, description }) => ({ name, description })),
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'An app’s API key: `Authorization: Bearer KEY`' },
          apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same API key as `X-API-Key: KEY`' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'OTPD_METRICS_TOKEN, when set' },
        },
        schemas: { Problem: ProblemSchema as unknown as Record<string, unknown> },
      },
    },
    transform,
  });

  // @fastify/swagger-ui answers /docs/static/index.html by redirecting to the same URL with `static/index.html`
  // replaced, which with a query string is the URL itself: a redirect loop. Send that path to the page.
  // `done` rather than a promise: the hook is on the root, so it runs for every request otpd answers.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.url.startsWith('/docs/static/index.html')) reply.redirect('/docs/', 302);
    else done();
  });

  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Everything the page loads comes from otpd itself (the UI ships its own assets), so it works offline
    // and under a strict policy. No `upgrade-insecure-requests`: otpd is often reached over plain http
    // on a private network, where upgraded asset requests would fail.
    staticCSP:
      "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; frame-ancestors 'self'; form-action 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'",
    uiConfig: { deepLinking: true },
    // The UI reads /docs/json; it gets the same document as /openapi.json.
    transformSpecification: (document) => ({ ...document, servers: [{ url: options.publicUrl() }] }),
  });

  app.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This OpenAPI 3.1 document',
        description: 'Generated from the route schemas at start-up; `servers` is the public URL (OTPD_PUBLIC_URL).',
        response: { 200: { description: 'an OpenAPI 3.1 document', type: 'object', additionalProperties: true } },
      },
    },
    async () => ({ ...app.swagger(), servers: [{ url: options.publicUrl() }] }),
  );
};

// The same marker fastify-plugin sets: the onRoute hook and the swagger decorator land on the root.
(openApi as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default openApi;
