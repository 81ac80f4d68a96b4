import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isOtpdError } from '../../src/errors.js';
import { NO_REQUEST } from '../../src/core/rate-limits.js';
import { startTestServer, type TestServer } from '../helper.js';
import { usNumber } from './support.js';

/** Security headers, tighter body limits, strict content types and the per-IP limits of the request context. */
describe('hardening', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('API answers forbid framing and any active content; no HSTS behind a plain-http public URL', async () => {
    for (const response of [await server.request('GET', '/v1/verifications/ve_none'), await server.request('GET', '/healthz', undefined, { apiKey: null }), await server.request('GET', '/nope')]) {
      assert.equal(response.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('strict-transport-security'), null);
    }
  });

  it('the hosted page keeps its own policy (frame-ancestors from allowedOrigins)', async () => {
    await server.server.services.apps.create('framed', { allowedOrigins: ['https://shop.example.com'] });
    const page = await server.request('GET', '/otp/framed/anything', undefined, { apiKey: null });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors https:\/\/shop\.example\.com/);
    assert.equal(page.headers.get('x-frame-options'), null);
  });

  it('check bodies are limited to 1 KiB and create bodies to 8 KiB; other media types are 415', async () => {
    const check = await server.request('POST', '/v1/verifications/ve_x/check', { code: '1'.repeat(2000) });
    assert.equal(check.status, 413);
    assert.equal(check.body.type, 'urn:otpd:problem:payload-too-large');
    const create = await server.request('POST', '/v1/verifications', { to: usNumber(), metadata: { blob: 'x'.repeat(9000) } });
    assert.equal(create.status, 413);
    const xml = await server.request('POST', '/v1/verifications', '<to>+12015550100</to>', { headers: { 'content-type': 'application/xml' } });
    assert.equal(xml.status, 415);
  });

  it('per-IP limits count the address of the context a service is given, not a keyed caller\'s', async () => {
    const { app } = await server.server.services.apps.create('ambient', { destinationCooldown: 0, rateLimits: { 'verifications-per-ip': { max: 2, windowSeconds: 60 } } });
    const verifications = server.server.services.verifications;
    const fromIp = (ip: string) => verifications.create(app, { to: usNumber() }, { ip });
    await fromIp('198.51.100.7');
    await fromIp('198.51.100.7');
    await assert.rejects(fromIp('198.51.100.7'), (error: unknown) => isOtpdError(error, 'RATE_LIMITED') && error.extensions?.limit === 'verifications-per-ip');
    await fromIp('198.51.100.8');
    // A keyed caller is a customer's server: its address is not the person's, so per-IP limits skip it.
    await verifications.create(app, { to: usNumber() }, { ip: '198.51.100.7', keyId: 'key_x' });
  });

  it('checks-per-ip refuses the checks past its limit from one address, not from another', async () => {
    const { app } = await server.server.services.apps.create('ip-checks', { destinationCooldown: 0, rateLimits: { 'checks-per-ip': { max: 3, windowSeconds: 60 } } });
    const verifications = server.server.services.verifications;
    const created = await verifications.create(app, { to: usNumber() }, NO_REQUEST);
    const check = (ip: string) => verifications.check(app, created.id, '000000', { ip });
    for (let i = 0; i < 3; i++) await check('198.51.100.20');
    await assert.rejects(check('198.51.100.20'), (error: unknown) => isOtpdError(error, 'RATE_LIMITED') && error.extensions?.limit === 'checks-per-ip' && (error.retryAfter ?? 0) > 0);
    await check('198.51.100.21');
  });
});

describe('hardening behind https', () => {
  it('sends HSTS when the public URL is https', async () => {
    const server = await startTestServer({ OTPD_PUBLIC_URL: 'https://otp.example.com' });
    try {
      const response = await server.request('GET', '/healthz', undefined, { apiKey: null });
      assert.equal(response.headers.get('strict-transport-security'), 'max-age=63072000; includeSubDomains');
    } finally {
      await server.close();
    }
  });
});
