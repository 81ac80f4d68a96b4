import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry } from '../../src/store/store.js';
import { startTestServer, type TestServer } from '../helper.js';
import { codeSentTo } from '../support/outbox.js';

/**
 * Every surface hands the services the request it serves (src/http/request-context.ts): the audit log
 * records its address (X-Forwarded-For here, with OTPD_TRUST_PROXY), API key, user agent and request id,
 * and the per-IP limits count its address — on the dialects and the hosted page as on the native API
 * (test/http/audit.test.ts covers that one).
 */
let counter = 0;
function fresh(): string {
  counter++;
  return `${process.pid % 10_000}${String(counter).padStart(4, '0')}`;
}

describe('the request context on dialect routes', () => {
  let server: TestServer;
  let keyId: string;

  before(async () => {
    server = await startTestServer({ OTPD_TRUST_PROXY: '1' });
    keyId = (await server.server.services.apps.authenticate(server.apiKey))!.keyId;
  });
  after(() => server.close());

  const from = (ip: string, requestId: string) => ({ 'x-forwarded-for': ip, 'user-agent': `dialect-client/${requestId}`, 'x-request-id': requestId });

  /** The default app's entries of one event recorded for `requestId`, once written. */
  async function entryOf(event: string, requestId: string): Promise<AuditEntry> {
    const services = server.server.services;
    await services.audit.flush();
    const app = await services.apps.get('default');
    const page = await services.audit.list(app, { event, limit: 200 });
    const entry = page.items.find((e) => e.requestId === requestId);
    assert.ok(entry, `a ${event} entry for ${requestId}: ${JSON.stringify(page.items.map((e) => e.requestId))}`);
    return entry;
  }

  const contextOf = (entry: AuditEntry) => ({ ip: entry.ip, keyId: entry.keyId, userAgent: entry.userAgent, requestId: entry.requestId });

  it('seed 002 (X-API-Key): create and check are recorded with the address, key, user agent and request id', async () => {
    const id = `ctx-${fresh()}`;
    const to = `person${fresh()}@ctx.example`;
    const put = await server.request('PUT', `/api/otp/${id}`, { to }, { apiKey: null, headers: { 'x-api-key': server.apiKey, ...from('198.51.100.21', 'req-002-put') } });
    assert.equal(put.status, 200, put.text);
    const code = await codeSentTo(server, to);
    const check = await server.request('POST', `/api/otp/${id}`, { otp: code === '000000' ? '111111' : '000000' }, { apiKey: null, headers: { 'x-api-key': server.apiKey, ...from('198.51.100.22', 'req-002-check') } });
    assert.equal(check.status, 400, check.text);
    assert.deepEqual(contextOf(await entryOf('verification.created', 'req-002-put')), { ip: '198.51.100.21', keyId, userAgent: 'dialect-client/req-002-put', requestId: 'req-002-put' });
    const checked = await entryOf('check.failed', 'req-002-check');
    assert.deepEqual(contextOf(checked), { ip: '198.51.100.22', keyId, userAgent: 'dialect-client/req-002-check', requestId: 'req-002-check' });
  });

  it('seed 003: a keyless request has its address and no key; a keyed one has the key its handler authenticated', async () => {
    const email = `user${fresh()}@ctx.example`;
    const keyless = await server.request('POST', '/v1/otp/', { email, userId: `u-${fresh()}` }, { apiKey: null, headers: from('198.51.100.31', 'req-003-keyless') });
    assert.equal(keyless.status, 200, keyless.text);
    assert.deepEqual(contextOf(await entryOf('verification.created', 'req-003-keyless')), { ip: '198.51.100.31', keyId: null, userAgent: 'dialect-client/req-003-keyless', requestId: 'req-003-keyless' });

    const userId = `u-${fresh()}`;
    const keyedEmail = `user${fresh()}@ctx.example`;
    const keyed = await server.request('POST', '/v1/otp/', { email: keyedEmail, userId }, { headers: from('198.51.100.32', 'req-003-keyed') });
    assert.equal(keyed.status, 200, keyed.text);
    assert.deepEqual(contextOf(await entryOf('verification.created', 'req-003-keyed')), { ip: '198.51.100.32', keyId, userAgent: 'dialect-client/req-003-keyed', requestId: 'req-003-keyed' });
    const code = await codeSentTo(server, keyedEmail);
    const verify = await server.request('POST', '/v1/otp/verify', { userId, otp: code === '000000' ? '111111' : '000000' }, { headers: from('198.51.100.33', 'req-003-verify') });
    assert.equal(verify.status, 400, verify.text);
    assert.deepEqual(contextOf(await entryOf('check.failed', 'req-003-verify')), { ip: '198.51.100.33', keyId, userAgent: 'dialect-client/req-003-verify', requestId: 'req-003-verify' });
  });

  it('seed 004 and the hosted page: checks are recorded with the address (their credential is no API key)', async () => {
    const services = server.server.services;
    const { appKey } = await services.apps.credentialsOf(await services.apps.get('default'));
    const userId = `u-${fresh()}`;
    const issued = await server.request('POST', `/otp/v1.0/appkeys/${appKey}/keys`, { userId }, { apiKey: null });
    assert.equal(issued.body.header.resultCode, 0, issued.text);
    const query = new URLSearchParams({ userId, encodedKey: issued.body.Key.encodedKey });
    const wrong = await server.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/000000/verification?${query}`, undefined, { apiKey: null, headers: from('198.51.100.41', 'req-004-check') });
    assert.equal(wrong.status, 200, wrong.text);
    const factorEntry = await entryOf('factor.check_failed', 'req-004-check').catch(() => entryOf('factor.verified', 'req-004-check'));
    assert.deepEqual(contextOf(factorEntry), { ip: '198.51.100.41', keyId: null, userAgent: 'dialect-client/req-004-check', requestId: 'req-004-check' });

    const id = `page-${fresh()}`;
    const to = `page${fresh()}@ctx.example`;
    assert.equal((await server.request('PUT', `/api/otp/${id}`, { to }, { apiKey: null, headers: { 'x-api-key': server.apiKey } })).status, 200);
    const page = await server.request('GET', `/otp/default/${id}`, undefined, { apiKey: null, headers: { accept: 'application/json' } });
    assert.equal(page.status, 200, page.text);
    const code = await codeSentTo(server, to);
    const checked = await server.request('POST', `/otp/default/${id}`, { csrf: page.body.csrf, otp: code }, { apiKey: null, headers: { accept: 'application/json', ...from('198.51.100.42', 'req-page-check') } });
    assert.equal(checked.status, 200, checked.text);
    assert.deepEqual(contextOf(await entryOf('verification.approved', 'req-page-check')), { ip: '198.51.100.42', keyId: null, userAgent: 'dialect-client/req-page-check', requestId: 'req-page-check' });
  });

  it('seed 003: per-IP limits count the forwarded address of keyless requests', async () => {
    const services = server.server.services;
    const before = (await services.apps.get('default')).settings;
    await services.apps.update('default', { rateLimits: { 'verifications-per-ip': { max: 1, windowSeconds: 60 }, 'checks-per-ip': { max: 2, windowSeconds: 60 } } });
    try {
      const generate = (ip: string) => server.request('POST', '/v1/otp/', { email: `limit${fresh()}@ctx.example`, userId: `u-${fresh()}` }, { apiKey: null, headers: { 'x-forwarded-for': ip } });
      assert.equal((await generate('198.51.100.51')).status, 200);
      const refused = await generate('198.51.100.51');
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.body.message, /too many verifications requested from this address/);
      assert.equal((await generate('198.51.100.52')).status, 200, 'another address has its own count');

      const verify = (ip: string) => server.request('POST', '/v1/otp/verify', { userId: 'nobody-asked', otp: '123456' }, { apiKey: null, headers: { 'x-forwarded-for': ip } });
      for (let i = 0; i < 2; i++) assert.doesNotMatch((await verify('198.51.100.53')).body.message, /too many checks/);
      assert.match((await verify('198.51.100.53')).body.message, /too many checks from this address/);
      assert.doesNotMatch((await verify('198.51.100.54')).body.message, /too many checks/);
    } finally {
      await services.apps.update('default', { rateLimits: before.rateLimits });
    }
  });
});
