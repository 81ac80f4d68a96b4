import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, TEST_SECRET, type TestServer } from '../helper.js';
import { runCli } from '../support/cli.js';

describe('otpd factors', () => {
  let server: TestServer;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    env = { OTPD_DATABASE: join(server.dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_REDIS_URL: '', OTPD_API_KEY: '' };
  });
  after(() => server.close());

  it('get --json prints what the API returns, never the secret; delete removes the factor', async () => {
    const enrolled = await server.request('POST', '/v1/factors', { type: 'totp', account: 'cli@example.com' });
    assert.equal(enrolled.status, 201, enrolled.text);
    const api = await server.request('GET', `/v1/factors/${enrolled.body.id}`);

    const json = await runCli(['factors', 'get', enrolled.body.id, '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), api.body);
    assert.ok(!json.stdout.includes(enrolled.body.secret), 'the secret is never printed');

    const plain = await runCli(['factors', 'get', enrolled.body.id], env);
    assert.match(plain.stdout, new RegExp(`^id +${enrolled.body.id}$`, 'm'));
    assert.ok(!plain.stdout.includes(enrolled.body.secret));

    assert.equal((await runCli(['factors', 'delete', enrolled.body.id], env)).code, 0);
    assert.equal((await server.request('GET', `/v1/factors/${enrolled.body.id}`)).status, 404);
    const again = await runCli(['factors', 'delete', enrolled.body.id], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^otpd: /);
  });
});
