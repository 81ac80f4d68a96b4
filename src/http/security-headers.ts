import type { FastifyPluginAsync } from 'fastify';

/**
 * Security headers on every answer (OWASP Secure Headers; ASVS 5 3.4):
 *
 * - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` and `X-Frame-Options: DENY` on
 *   every answer whose route set no policy of its own: API answers are data, never documents to render or
 *   frame. Routes that serve documents (the hosted page, whose frame-ancestors are the app's
 *   allowedOrigins; the API docs) set their own Content-Security-Policy, and it is left as they set it.
 * - `Strict-Transport-Security` (RFC 6797) when the public URL is https: browsers then refuse plain http
 *   to this host for two years. Behind plain http it would be ignored (and wrong), so it is not sent.
 *
 * `X-Content-Type-Options`, `Referrer-Policy` and `Cache-Control` are set in app.ts for every answer.
 */
const securityHeaders: FastifyPluginAsync<{ publicUrl: () => string }> = async (app, { publicUrl }) => {
  // `done` rather than a promise: this runs for every answer.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (!reply.hasHeader('Content-Security-Policy')) {
      reply.header('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
      if (!reply.hasHeader('X-Frame-Options')) reply.header('X-Frame-Options', 'DENY');
    }
    if (publicUrl().startsWith('https://')) reply.header('Strict-Transport-Security', 'max-age=63072000; includeSubDomains');
    done(null, payload);
  });
};

// The same marker fastify-plugin sets: the hook lands on the root and sees every route.
(securityHeaders as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export default securityHeaders;
