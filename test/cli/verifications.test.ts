import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, TEST_SECRET, type TestServer } from '../helper.js';
import { runCli } from '../support/cli.js';

describe('otpd verifications', () => {
  let server: TestServer;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    // The CLI opens the same SQLite file as the running server, as an operator on that host would.
    env = { OTPD_DATABASE: join(server.dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_REDIS_URL: '', OTPD_API_KEY: '' };
  });
  after(() => server.close());

  it('get --json prints what the API returns; the plain form masks the destination', async () => {
    const created = await server.request('POST', '/v1/verifications', { to: '+15555550301', metadata: { order: 7 } });
    assert.equal(created.status, 201);
    await server.codeFor(created.body.id);
    await server.server.services.drain();
    const api = await server.request('GET', `/v1/verifications/${created.body.id}`);

    const json = (await runCli(['verifications', 'get', created.body.id, '--json'], env));
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), api.body);

    const plain = (await runCli(['verifications', 'get', created.body.id], env));
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, new RegExp(`^id +${created.body.id}$`, 'm'));
    assert.match(plain.stdout, /^status +pending$/m);
    assert.match(plain.stdout, /^to +\+1\*{6}0301$/m);
    assert.doesNotMatch(plain.stdout, /15555550301/);
  });

  it('cancel stops the code working; a second cancel and unknown ids or apps fail with exit 1 and a clear message', async () => {
    const created = await server.request('POST', '/v1/verifications', { to: '+15555550302' });
    const code = await server.codeFor(created.body.id);
    const canceled = (await runCli(['verifications', 'cancel', created.body.id, '--json'], env));
    assert.equal(canceled.code, 0, canceled.stderr);
    assert.equal(JSON.parse(canceled.stdout).status, 'canceled');
    const check = await server.request('POST', `/v1/verifications/${created.body.id}/check`, { code });
    assert.equal(check.body.valid, false);
    assert.equal(check.body.status, 'canceled');

    const again = (await runCli(['verifications', 'cancel', created.body.id], env));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is canceled; only a pending verification can be canceled/);
    const unknown = (await runCli(['verifications', 'get', 've_doesnotexist'], env));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no verification ve_doesnotexist/);
    const otherApp = (await runCli(['verifications', 'get', created.body.id, '--app', 'nosuchapp'], env));
    assert.equal(otherApp.code, 1);
    assert.match(otherApp.stderr, /no app named "nosuchapp"/);
  });
});
