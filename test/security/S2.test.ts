import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { defaultSettings } from '../../src/core/settings.js';
import { startTestServer, type TestResponse, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { appWith, usNumber, wrongCode } from './support.js';

/**
 * Standards S2 (OWASP MFA cheat sheet): the native API never echoes a code; seed 002, whose documented
 * contract returns the code in its PUT answer, does so only while the app's `echoCode` allows it, and
 * apps created with NODE_ENV=production start with it off. Codes are captured where a person would see
 * them (the dev outbox) and looked for in every answer and every log line.
 */
for (const backend of STORE_BACKENDS) {
  describe(`S2 on ${backend.name}`, () => {
    let server: TestServer;
    const logLines: string[] = [];
    const answers: TestResponse[] = [];

    before(async () => {
      const logStream = new PassThrough();
      logStream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
      server = await startTestServer({ ...backend.env(), OTPD_LOG_LEVEL: 'debug' }, { logStream });
    });
    after(() => server.close());

    async function call(method: string, path: string, body?: unknown, options: { apiKey?: string; headers?: Record<string, string> } = {}): Promise<TestResponse> {
      const response = await server.request(method, path, body, options);
      answers.push(response);
      return response;
    }

    it('S2: no native answer carries a code, through create, check, resend, replay and every error', async () => {
      const apiKey = await appWith(server, 'no-echo-native', { resendCooldown: 0, destinationCooldown: 0 });
      // 10-digit codes: no id or timestamp in an answer can contain one by chance.
      const to = usNumber();
      const created = await call('POST', '/v1/verifications', { to, codeLength: 10 }, { apiKey, headers: { 'idempotency-key': 's2-replay' } });
      assert.equal(created.status, 201, created.text);
      const id = created.body.id;
      const first = await server.codeFor(id);
      await call('POST', '/v1/verifications', { to, codeLength: 10 }, { apiKey, headers: { 'idempotency-key': 's2-replay' } });
      await call('GET', `/v1/verifications/${id}`, undefined, { apiKey });
      await call('POST', `/v1/verifications/${id}/check`, { code: wrongCode(first) }, { apiKey });
      await call('POST', '/v1/verifications/check', { to, code: wrongCode(first) }, { apiKey });
      await call('POST', `/v1/verifications/${id}/resend`, undefined, { apiKey });
      const second = await server.codeFor(id, 2);
      await call('POST', `/v1/verifications/${id}/check`, { code: first }, { apiKey });
      const approved = await call('POST', `/v1/verifications/${id}/check`, { code: second }, { apiKey });
      assert.equal(approved.body.valid, true);
      await call('POST', `/v1/verifications/${id}/check`, { code: second }, { apiKey });
      await call('POST', `/v1/verifications/${id}/resend`, undefined, { apiKey });
      await call('POST', `/v1/verifications/${id}/cancel`, undefined, { apiKey });
      await call('POST', '/v1/verifications', { to, codeLength: 10, code: first }, { apiKey });
      await call('POST', `/v1/verifications/${id}/check`, { code: second, extra: second }, { apiKey });

      const codes = [first, second];
      for (const answer of answers) for (const code of codes) assert.ok(!answer.text.includes(code), `an answer (${answer.status}) carries a code`);
      // The unknown-field answers above echo nothing of the rejected fields' values either.
      await server.server.services.drain();
      assert.ok(logLines.length > 10, 'the log was captured');
      for (const line of logLines) for (const code of codes) assert.ok(!line.includes(code), `a log line carries a code: ${line.slice(0, 200)}`);
    });

    it('S2: seed 002 echoes the code in its PUT answer only while echoCode is on', async () => {
      const onKey = await appWith(server, 'echo-on', { echoCode: true });
      const offKey = await appWith(server, 'echo-off', { echoCode: false });
      const toOn = usNumber();
      const on = await call('PUT', '/api/otp/s2-echo-on', { to: toOn }, { apiKey: onKey });
      assert.equal(on.status, 200, on.text);
      const codeOn = await waitForCodeTo(server, toOn);
      assert.equal(on.body.data.otp, codeOn, 'echoCode on: the documented PUT answer carries the code');

      const toOff = usNumber();
      const off = await call('PUT', '/api/otp/s2-echo-off', { to: toOff }, { apiKey: offKey });
      assert.equal(off.status, 200, off.text);
      const codeOff = await waitForCodeTo(server, toOff);
      assert.equal(off.body.data.otp, '');
      assert.ok(!off.text.includes(codeOff));
      // Every other 002 answer carries no code, even with echoCode on.
      const status = await call('POST', '/api/otp/s2-echo-on/status', undefined, { apiKey: onKey });
      assert.ok(!status.text.includes(codeOn));
      await server.server.services.drain();
      for (const line of logLines) for (const code of [codeOn, codeOff]) assert.ok(!line.includes(code), `a log line carries a code: ${line.slice(0, 200)}`);
    });
  });
}

describe('S2: production defaults', () => {
  it('apps created with NODE_ENV=production start with echoCode off (an explicit setting still wins)', async () => {
    assert.equal(defaultSettings(true).echoCode, false);
    assert.equal(defaultSettings(false).echoCode, true);
    const server = await startTestServer();
    try {
      const { AppsService } = await import('../../src/services/apps.js');
      const { Keyring } = await import('../../src/core/keyring.js');
      const production = new AppsService(server.server.store, new Keyring('s2-production-secret-0123456789abcdef'), Date.now, true);
      assert.equal((await production.create('prod-default', {})).app.settings.echoCode, false);
      assert.equal((await production.create('prod-explicit', { echoCode: true })).app.settings.echoCode, true);
    } finally {
      await server.close();
    }
  });
});

async function waitForCodeTo(server: TestServer, to: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const found = server.messages().find((m) => m.to === to);
    if (found) return found.code;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no message to ${to}`);
}
