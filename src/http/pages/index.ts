import formbody from '@fastify/formbody';
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { PageOutcome, PageView } from '../../services/hosted-page.js';
import type { Services } from '../../services/index.js';
import { contextOf } from '../request-context.js';
import { renderPage, resultMessage, type PageContext, type PageResult } from './render.js';

/**
 * The hosted verification page at `/otp/:namespace/:id` (docs/hosted-page.md) and its static files under
 * `/static/`. Keyless: it acts only through the hosted-page service, which gives unknown and expired ids
 * the same answer. Works as a plain form POST without JavaScript; `static/page.js` improves it in place,
 * and `static/otp.js` lets a site open it as an iframe dialog that reports the result by `postMessage`.
 */
const STATIC_FILES: Record<string, string> = {
  'otp.js': 'text/javascript; charset=utf-8',
  'otp.css': 'text/css; charset=utf-8',
  'page.js': 'text/javascript; charset=utf-8',
  'page.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

function loadStatic(): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [name, type] of Object.entries(STATIC_FILES)) out.set(name, { body: readFileSync(new URL(`./static/${name}`, import.meta.url)), type });
  return out;
}

interface Params {
  namespace: string;
  id: string;
}

const PARAM_MAX = 128;

function paramsOf(request: FastifyRequest): Params {
  const { namespace, id } = request.params as Params;
  // Over-long values cannot name anything; they get the same expired page as every unknown id.
  return { namespace: namespace.slice(0, PARAM_MAX + 1), id: id.slice(0, PARAM_MAX + 1) };
}

function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** The embedding site's origin from `?origin=`, kept only when the app allows it (decisions 19). */
function parentOriginOf(request: FastifyRequest, view: PageView): string | undefined {
  const origin = (request.query as Record<string, unknown>).origin;
  return typeof origin === 'string' && view.allowedOrigins.includes(origin) ? origin : undefined;
}

/**
 * Strict CSP: scripts and styles only from this origin, no inline ones, forms post only here, and only the
 * app's allowed origins may frame the page (none when it has none).
 */
function securityHeaders(request: FastifyRequest, reply: FastifyReply, view: PageView): void {
  const ancestors = view.allowedOrigins.length > 0 ? view.allowedOrigins.join(' ') : "'none'";
  reply.header(
    'Content-Security-Policy',
    `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors ${ancestors}`,
  );
  if (view.allowedOrigins.length === 0) reply.header('X-Frame-Options', 'DENY');
  reply.header('Cross-Origin-Resource-Policy', 'same-origin');
  cors(request, reply, view.allowedOrigins);
}

/** CORS for the page's JSON answers, for the app's allowed origins only. */
function cors(request: FastifyRequest, reply: FastifyReply, allowedOrigins: string[]): void {
  reply.header('Vary', 'Origin, Accept');
  const origin = request.headers.origin;
  if (typeof origin === 'string' && allowedOrigins.includes(origin)) reply.header('Access-Control-Allow-Origin', origin);
}

function jsonOf(ctx: PageContext): Record<string, unknown> {
  const { view } = ctx;
  const message = resultMessage(ctx);
  return {
    state: view.state,
    ...(ctx.result === undefined ? {} : { result: ctx.result }),
    ...(message ? { message: message.text } : {}),
    ...(view.state === 'open'
      ? { to: view.maskedTo, channel: view.channel, codeLength: view.codeLength, expiresIn: view.expiresIn, attemptsLeft: view.attemptsLeft, resendIn: view.resendIn, csrf: view.csrf }
      : {}),
  };
}

function send(request: FastifyRequest, reply: FastifyReply, params: Params, outcome: PageOutcome<PageResult> | { view: PageView; result?: undefined; retryAfter?: undefined }): FastifyReply {
  const parentOrigin = parentOriginOf(request, outcome.view);
  const ctx: PageContext = { namespace: params.namespace, id: params.id, view: outcome.view };
  if (outcome.result !== undefined) ctx.result = outcome.result;
  if (outcome.retryAfter !== undefined) ctx.retryAfter = outcome.retryAfter;
  if (parentOrigin) ctx.parentOrigin = parentOrigin;
  securityHeaders(request, reply, outcome.view);
  reply.code(outcome.result === 'bad_csrf' ? 403 : 200);
  if (outcome.result === 'cooldown' && outcome.retryAfter !== undefined) reply.header('Retry-After', String(outcome.retryAfter));
  if (wantsJson(request)) return reply.type('application/json; charset=utf-8').send(jsonOf(ctx));
  return reply.type('text/html; charset=utf-8').send(renderPage(ctx));
}

function field(body: unknown, name: string): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

const pages: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const files = loadStatic();
  const page = services.hostedPage;
  await app.register(formbody, { bodyLimit: 8 * 1024 });

  app.get('/static/:file', async (request, reply) => {
    const file = files.get((request.params as { file: string }).file);
    if (!file) return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    return reply.header('Cache-Control', 'public, max-age=3600').type(file.type).send(file.body);
  });

  app.get('/otp/:namespace/:id', async (request, reply) => {
    const params = paramsOf(request);
    return send(request, reply, params, { view: await page.view(params.namespace, params.id) });
  });

  app.post('/otp/:namespace/:id', async (request, reply) => {
    const params = paramsOf(request);
    const csrf = field(request.body, 'csrf');
    const action = field(request.body, 'action') ?? 'check';
    const context = contextOf(request);
    const outcome: PageOutcome<PageResult> =
      action === 'resend' ? await page.resend(params.namespace, params.id, csrf, context) : await page.check(params.namespace, params.id, csrf, field(request.body, 'otp'), context);
    return send(request, reply, params, outcome);
  });

  // CORS preflight for the JSON form of the page, answered for allowed origins only.
  app.options('/otp/:namespace/:id', async (request, reply) => {
    const params = paramsOf(request);
    const view = await page.view(params.namespace, params.id);
    cors(request, reply, view.allowedOrigins);
    if (reply.hasHeader('Access-Control-Allow-Origin')) {
      reply.header('Access-Control-Allow-Methods', 'GET, POST');
      reply.header('Access-Control-Allow-Headers', 'Content-Type, Accept');
      reply.header('Access-Control-Max-Age', '600');
    }
    return reply.code(204).send();
  });
};

export default pages;
