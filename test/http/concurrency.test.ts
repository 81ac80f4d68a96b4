import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

describe('T2: concurrent checks through HTTP', () => {
  it('T2: 200 concurrent wrong checks never count past maxAttempts, and the right code then fails', async () => {
    const v = (await server.request('POST', '/v1/verifications', { to: '+15555551001', maxAttempts: 5 })).body;
    const code = await server.codeFor(v.id);
    const wrong = code === '000000' ? '111111' : '000000';
    const results = await Promise.all(Array.from({ length: 200 }, () => server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrong })));
    assert.ok(results.every((r) => r.status === 200 && r.body.valid === false));
    assert.ok(results.every((r) => r.body.attempts <= 5), 'an answer reported more attempts than allowed');
    const after = (await server.request('GET', `/v1/verifications/${v.id}`)).body;
    assert.equal(after.attempts, 5);
    assert.equal(after.status, 'max_attempts_reached');
    const right = await server.request('POST', `/v1/verifications/${v.id}/check`, { code });
    assert.equal(right.body.valid, false);
  });

  it('T2: 20 concurrent right codes approve exactly once', async () => {
    const v = (await server.request('POST', '/v1/verifications', { to: '+15555551002' })).body;
    const code = await server.codeFor(v.id);
    const results = await Promise.all(Array.from({ length: 20 }, () => server.request('POST', `/v1/verifications/${v.id}/check`, { code })));
    assert.equal(results.filter((r) => r.body.valid === true).length, 1);
    assert.ok(results.every((r) => r.body.status === 'approved'));
  });
});
