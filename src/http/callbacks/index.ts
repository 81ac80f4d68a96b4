import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { CallbackRequest } from '../../delivery/provider.js';
import type { Services } from '../../services/index.js';
import { problemResponses } from '../schemas.js';

export interface CallbacksOptions {
  services: Services;
  /** otpd's public base URL: Twilio signs the URL it called, which is this plus the path and query. */
  publicUrl: () => string;
}

const BODY_LIMIT = 64 * 1024;

function headersOf(request: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function queryOf(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value) && typeof value[0] === 'string') out[name] = value[0];
  }
  return out;
}

/**
 * Delivery receipts: `GET|POST /v1/providers/:provider/callbacks`, where each provider reports status
 * changes (Twilio StatusCallback, Vonage DLR, MSG91 delivery report, the webhook provider's reports). These
 * routes sit outside the native API's API-key rule (decisions 8): each request is authenticated the way its
 * provider signs, by the delivery layer. The body is kept as received, since signatures cover its bytes.
 */
const callbacks: FastifyPluginAsync<CallbacksOptions> = async (app, { services, publicUrl }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));

  app.route({
    method: ['GET', 'POST'],
    url: '/v1/providers/:provider/callbacks',
    schema: {
      tags: ['provider callbacks'],
      summary: 'Delivery receipt from a provider',
      description:
        'Status callbacks of the configured providers (Twilio StatusCallback, Vonage delivery receipts, MSG91 delivery reports, the webhook provider). Authenticated as each provider signs: X-Twilio-Signature, Vonage signed webhooks or the `token` otpd put in the callback URL, Standard Webhooks signatures (docs/delivery.md). Receipts for unknown messages are acknowledged and ignored.',
      params: { type: 'object', properties: { provider: { type: 'string', description: 'the provider name from the config file' } }, required: ['provider'] },
      response: { 204: { description: 'receipts recorded (or ignored for unknown messages)', type: 'null' }, ...problemResponses('FORBIDDEN', 'NOT_FOUND') },
    },
    handler: async (request, reply) => {
      const { provider } = request.params as { provider: string };
      const rawBody = typeof request.body === 'string' ? request.body : '';
      const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      let form: Record<string, string> | undefined;
      let json: unknown;
      if (contentType === 'application/x-www-form-urlencoded') form = Object.fromEntries(new URLSearchParams(rawBody));
      else if (contentType === 'application/json' || contentType.endsWith('+json')) {
        try {
          json = rawBody ? JSON.parse(rawBody) : undefined;
        } catch {
          json = undefined;
        }
      }
      const callback: CallbackRequest = { method: request.method, publicUrl: publicUrl() + request.url, query: queryOf(request), headers: headersOf(request), rawBody, form, json };
      const outcome = await services.delivery.handleCallback(provider, callback);
      request.log.info({ provider, recorded: outcome.recorded, ignored: outcome.ignored }, 'provider callback');
      return reply.code(outcome.reply.status as 204).type(outcome.reply.contentType).send(outcome.reply.body);
    },
  });
};

export default callbacks;
