import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../../services/index.js';
import { toOtpdError } from '../../problem.js';

/** An OAuth 2.0 error response (RFC 6749 §5.2). */
class OAuthError {
  constructor(
    readonly error: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'server_error' | 'temporarily_unavailable',
    readonly description: string,
    readonly status = 400,
  ) {}
}

const BASIC = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i;

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1: each part form-urlencoded first). */
function basicCredentials(header: string): { id: string; secret: string } {
  const match = BASIC.exec(header);
  if (!match) throw new OAuthError('invalid_request', 'Authorization: must be "Basic base64(client_id:client_secret)"');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError('invalid_request', 'Authorization: the Basic credentials must be client_id:client_secret');
  try {
    const unescape = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
    return { id: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
  } catch {
    throw new OAuthError('invalid_request', 'Authorization: the Basic credentials are not form-urlencoded');
  }
}

function stringParam(body: Record<string, unknown>, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = body[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new OAuthError('invalid_request', `${name}: must be a single string`);
    return value;
  }
  return undefined;
}

function sendOAuthError(reply: FastifyReply, failed: OAuthError): FastifyReply {
  // RFC 6749 §5.2: invalid_client is a 401 with a WWW-Authenticate challenge for the scheme the client may use.
  if (failed.error === 'invalid_client') reply.header('WWW-Authenticate', 'Basic realm="otpd"');
  return reply.code(failed.status).send({ error: failed.error, error_description: failed.description });
}

/**
 * `POST /security/v1/201904/oauth/token`: the "partner token" of seed 000, by the OAuth 2.0 client
 * credentials grant (RFC 6749 §4.4): `grant_type=client_credentials`, `client_id` = PartnerID,
 * `client_secret` = EncryptKey, in a form or JSON body or by HTTP Basic (not both, §2.3). `PartnerID` and
 * `EncryptKey` are accepted as the body's names too.
 */
const tokenRoutes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  await app.register(formbody);

  app.addHook('onSend', async (_request, reply, payload) => {
    // RFC 6749 §5.1: token responses must not be cached.
    reply.header('Cache-Control', 'no-store');
    reply.header('Pragma', 'no-cache');
    return payload;
  });

  app.setErrorHandler((thrown, request: FastifyRequest, reply) => {
    if (thrown instanceof OAuthError) return sendOAuthError(reply, thrown);
    const error = toOtpdError(thrown);
    if (error.status >= 500) request.log.error({ err: thrown }, 'seed-000 token request failed');
    if (error.code === 'STORE_UNAVAILABLE') return sendOAuthError(reply, new OAuthError('temporarily_unavailable', 'the store is unavailable; retry shortly', 503));
    if (error.status >= 500) return sendOAuthError(reply, new OAuthError('server_error', 'the server failed to handle this request', 500));
    return sendOAuthError(reply, new OAuthError('invalid_request', error.code === 'UNSUPPORTED_MEDIA_TYPE' ? 'Content-Type: must be application/x-www-form-urlencoded or application/json' : error.message));
  });

  app.post('/security/v1/201904/oauth/token', async (request, reply) => {
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw new OAuthError('invalid_request', 'body: must be a form or a JSON object');
    const fields = body as Record<string, unknown>;
    const grantType = stringParam(fields, 'grant_type');
    if (grantType === undefined) throw new OAuthError('invalid_request', 'grant_type: is required (client_credentials)');
    if (grantType !== 'client_credentials') throw new OAuthError('unsupported_grant_type', 'grant_type: only client_credentials is supported');

    const bodyId = stringParam(fields, 'client_id', 'PartnerID');
    const bodySecret = stringParam(fields, 'client_secret', 'EncryptKey');
    const header = request.headers.authorization;
    let id: string | undefined;
    let secret: string | undefined;
    if (header !== undefined) {
      if (bodySecret !== undefined) throw new OAuthError('invalid_request', 'use one client authentication method: HTTP Basic or client_secret in the body, not both');
      ({ id, secret } = basicCredentials(header));
      if (bodyId !== undefined && bodyId !== id) throw new OAuthError('invalid_request', 'client_id: differs from the HTTP Basic credentials');
    } else {
      id = bodyId;
      secret = bodySecret;
    }
    if (!id) throw new OAuthError('invalid_request', 'client_id: is required (the PartnerID)');
    if (!secret) throw new OAuthError('invalid_request', 'client_secret: is required (the EncryptKey)');

    const principal = await services.partnerTokens.authenticateClient(id, secret);
    if (!principal) throw new OAuthError('invalid_client', 'unknown client_id or wrong client_secret', 401);
    const issued = services.partnerTokens.issue(principal);
    return reply.code(200).send({ access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn });
  });
};

export default tokenRoutes;
