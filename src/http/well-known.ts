import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services/index.js';

/**
 * `GET /.well-known/jwks.json`: otpd's public keys (RFC 7517 JWK Set) for verifying approval receipts
 * offline — the current key and, during a rotation, the previous one. Public: no API key.
 */
const wellKnown: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  const schema = {
    summary: 'Public keys of signed approval receipts (JWK Set)',
    description: 'Ed25519 keys (RFC 8037) that verify the `receipt` of an approved check (docs/audit-and-events.md); the current key and, during a rotation, the previous one.',
    response: { 200: { description: 'a JWK Set (RFC 7517 §5)', type: 'object', additionalProperties: true } },
  };
  app.get('/.well-known/jwks.json', { schema }, async (_request, reply) => {
    // Keys change only with a restart under a new secret; caches may keep them for a few minutes.
    reply.header('Cache-Control', 'public, max-age=300');
    return services.receipts.jwks();
  });
};

export default wellKnown;
