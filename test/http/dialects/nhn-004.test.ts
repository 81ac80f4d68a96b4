import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { URI } from 'otpauth';
import { startTestServer, type TestResponse, type TestServer } from '../../helper.js';
import { decodeQrPng } from '../../support/qr.js';
import { referenceBase32Decode, referenceTotp } from '../../support/otp-reference.js';
import { deleteKeysWithPrefix, inspectionClient, uniquePrefix } from '../../support/redis-keys.js';

/**
 * Seed 004 (NHN Cloud OTP): every documented request and response, and each resultCode of the seed's
 * table, end to end on SQLite and on Redis. Errors are HTTP 200 with `successful: false` (decisions 18).
 */
const REDIS_URL = 'redis://127.0.0.1:6379';
const OTHER_SECRET = 'another-server-secret-9876543210-zyxwvutsrqpo';
const SUCCESS = { resultCode: 0, resultMessage: 'SUCCESS', successful: true };

function assertResult(response: TestResponse, resultCode: number, messagePattern?: RegExp): void {
  assert.equal(response.status, 200, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(response.body), ['header'], response.text);
  assert.equal(response.body.header.resultCode, resultCode, response.text);
  assert.equal(response.body.header.successful, resultCode === 0);
  assert.equal(typeof response.body.header.resultMessage, 'string');
  if (messagePattern) assert.match(response.body.header.resultMessage, messagePattern);
}

for (const backend of ['sqlite', 'redis'] as const) {
  describe(`seed 004 NHN OTP dialect (${backend})`, () => {
    let server: TestServer;
    let appKey: string;
    let otherAppKey: string;
    const prefix = uniquePrefix('nhn004');
    const env: Record<string, string> = backend === 'redis' ? { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: prefix } : {};
    const logLines: string[] = [];
    let userCounter = 0;
    const newUser = () => `user-${++userCounter}`;

    before(async () => {
      const logStream = new PassThrough();
      logStream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
      server = await startTestServer({ ...env, OTPD_LOG_LEVEL: 'info' }, { logStream });
      const apps = server.server.services.apps;
      appKey = (await apps.credentialsOf(await apps.get('default'))).appKey;
      otherAppKey = (await apps.create(`nhn-other-${Date.now().toString(36)}`, {})).credentials.appKey;
    });
    after(async () => {
      await server.close();
      if (backend === 'redis') {
        const client = inspectionClient(REDIS_URL);
        await deleteKeysWithPrefix(client, prefix).finally(() => client.disconnect());
      }
    });

    /** No API key: the appKey in the path is the credential. */
    const issue = (body: unknown, version = 'v1.0', key = appKey, headers: Record<string, string> = {}) =>
      server.request('POST', `/otp/${version}/appkeys/${key}/keys`, body, { apiKey: null, headers });
    const check = (code: string, query: Record<string, string>, version = 'v1.0', key = appKey) =>
      server.request('GET', `/otp/${version}/appkeys/${key}/codes/${code}/verification?${new URLSearchParams(query)}`, undefined, { apiKey: null });

    for (const version of ['v1.0', 'v1']) {
      it(`POST /otp/${version}/appkeys/{appKey}/keys: header + Key with a 160-bit encodedKey and a plain-base64 QR PNG`, async () => {
        const response = await issue({ userId: 'test', serviceName: 'svc' }, version);
        assert.equal(response.status, 200);
        assert.deepEqual(Object.keys(response.body), ['header', 'Key']);
        assert.deepEqual(response.body.header, SUCCESS);
        assert.deepEqual(Object.keys(response.body.Key), ['encodedKey', 'qrCodeEncodedString']);
        const { encodedKey, qrCodeEncodedString } = response.body.Key;
        assert.match(encodedKey, /^[A-Z2-7]{32}$/);
        assert.equal(referenceBase32Decode(encodedKey).length, 20, 'otpd issues 160-bit keys (the seed example is 80-bit)');
        assert.match(qrCodeEncodedString, /^iVBORw0KGgo[A-Za-z0-9+/]+=*$/, 'plain base64 PNG, no data: prefix');
        const uri = decodeQrPng(qrCodeEncodedString);
        assert.ok(uri, 'the QR code decodes');
        const parsed = URI.parse(uri);
        assert.equal(parsed.secret.base32, encodedKey);
        assert.equal(parsed.issuer, 'svc');
        assert.equal(parsed.label, 'test');
        assert.equal(new URL(uri).host, 'totp');
        assert.deepEqual([parsed.algorithm, parsed.digits, (parsed as { period?: number }).period], ['SHA1', 6, 30]);
      });

      it(`GET /otp/${version}/…/codes/{code}/verification: 0 for the right code, -102 for it again, -101 for a wrong one`, async () => {
        const userId = newUser();
        const { encodedKey } = (await issue({ userId, serviceName: 'svc' }, version)).body.Key;
        const code = referenceTotp(encodedKey, Date.now());
        const ok = await check(code, { userId, encodedKey }, version);
        assertResult(ok, 0);
        assert.deepEqual(ok.body.header, SUCCESS);
        assertResult(await check(code, { userId, encodedKey }, version), -102, /^DATA_DUPLICATE_ERROR/);
        const wrong = String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');
        assertResult(await check(wrong, { userId, encodedKey }, version), -101, /^DATA_INVALID_ERROR/);
      });
    }

    it('the issuer defaults to the app name when serviceName is absent', async () => {
      const response = await issue({ userId: newUser() });
      assert.deepEqual(response.body.header, SUCCESS);
      assert.equal(URI.parse(decodeQrPng(response.body.Key.qrCodeEncodedString)!).issuer, 'default');
    });

    it('-4 APPKEY_ERROR for an unknown appKey, on both operations and both versions', async () => {
      for (const version of ['v1.0', 'v1']) {
        assertResult(await issue({ userId: 'test', serviceName: 'svc' }, version, 'ad89539d41c8363a987034b6c84c962cd8c813c9d6de35ec6b6afbee697aaa7a'), -4, /^APPKEY_ERROR/);
        assertResult(await check('123456', { userId: 'test', encodedKey: 'YUI5RSM2QNNRNJ7C' }, version, 'nope'), -4, /^APPKEY_ERROR/);
      }
    });

    it('-2 PARAMETER_ERROR for missing or invalid parameters, naming the parameter', async () => {
      const userId = newUser();
      const { encodedKey } = (await issue({ userId })).body.Key;
      assertResult(await issue({ serviceName: 'svc' }), -2, /userId/);
      assertResult(await issue({ userId: '' }), -2, /userId/);
      assertResult(await issue({ userId: 42 }), -2, /userId/);
      assertResult(await issue({ userId: 'x'.repeat(129) }), -2, /userId/);
      assertResult(await issue({ userId: 'a:b' }), -2, /^PARAMETER_ERROR: userId: must not contain ":"/);
      assertResult(await issue({ userId: 'ok', serviceName: 'a:b' }), -2, /^PARAMETER_ERROR: serviceName: must not contain ":"/);
      assertResult(await issue('{"userId": '), -2);
      assertResult(await check('123456', { encodedKey }), -2, /userId/);
      assertResult(await check('123456', { userId }), -2, /encodedKey/);
      assertResult(await check('12a456', { userId, encodedKey }), -2, /code/);
      assertResult(await check('1234567', { userId, encodedKey }), -2, /code/);
      // A key that is not the one issued to this user, and a user with no key.
      const otherKey = (await issue({ userId: newUser() })).body.Key.encodedKey;
      assertResult(await check(referenceTotp(otherKey, Date.now()), { userId, encodedKey: otherKey }), -2, /encodedKey/);
      assertResult(await check(referenceTotp(encodedKey, Date.now()), { userId: 'never-issued', encodedKey }), -2, /encodedKey/);
      // The same userId under another app's appKey has no key there.
      assertResult(await check(referenceTotp(encodedKey, Date.now()), { userId, encodedKey }, 'v1.0', otherAppKey), -2, /encodedKey/);
      // None of these counted as a wrong code: the right one still works.
      assertResult(await check(referenceTotp(encodedKey, Date.now()), { userId, encodedKey }), 0);
    });

    it('-3 HTTP_STATUS_ERROR for a body that is not JSON and for an unknown path', async () => {
      assertResult(await issue('userId=test', 'v1.0', appKey, { 'content-type': 'application/x-www-form-urlencoded' }), -3, /HTTP_STATUS_ERROR/);
      assertResult(await issue('userId=test', 'v1.0', appKey, { 'content-type': 'text/plain' }), -3, /HTTP_STATUS_ERROR/);
      const unknown = await server.request('GET', `/otp/v1.0/appkeys/${appKey}/nothing`, undefined, { apiKey: null });
      assertResult(unknown, -3, /HTTP_STATUS_ERROR/);
      assertResult(await server.request('DELETE', `/otp/v1/appkeys/${appKey}/keys`, undefined, { apiKey: null }), -3);
    });

    it('-1 FAIL while the key is locked after repeated wrong codes, with Retry-After', async () => {
      const userId = newUser();
      const { encodedKey } = (await issue({ userId })).body.Key;
      const code = referenceTotp(encodedKey, Date.now());
      const wrong = String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');
      for (let i = 0; i < 5; i++) assertResult(await check(wrong, { userId, encodedKey }), -101);
      const locked = await check(code, { userId, encodedKey });
      assertResult(locked, -1, /^FAIL: FACTOR_LOCKED/);
      assert.equal(locked.headers.get('retry-after'), '1');
    });

    it('-1 FAIL when the stored key does not decrypt under the server secret (fails closed)', async () => {
      const userId = newUser();
      const { encodedKey } = (await issue({ userId })).body.Key;
      const other = await startTestServer({ ...env, OTPD_SECRET: OTHER_SECRET, ...(backend === 'sqlite' ? { OTPD_DATABASE: join(server.dir, 'otpd.db') } : {}) });
      try {
        const response = await other.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/${referenceTotp(encodedKey, Date.now())}/verification?userId=${userId}&encodedKey=${encodedKey}`, undefined, { apiKey: null });
        assertResult(response, -1, /SECRET_MISMATCH/);
      } finally {
        await other.close();
      }
    });

    it('a new key for the same userId replaces the old one', async () => {
      const userId = newUser();
      const first = (await issue({ userId, serviceName: 'svc' })).body.Key.encodedKey;
      const second = (await issue({ userId, serviceName: 'svc' })).body.Key.encodedKey;
      assert.notEqual(first, second);
      assertResult(await check(referenceTotp(first, Date.now()), { userId, encodedKey: first }), -2, /encodedKey/);
      assertResult(await check(referenceTotp(second, Date.now()), { userId, encodedKey: second }), 0);
    });

    it('codes and keys in URLs never reach the log lines', async () => {
      const userId = newUser();
      const { encodedKey } = (await issue({ userId, serviceName: 'svc' })).body.Key;
      assertResult(await check(referenceTotp(encodedKey, Date.now()), { userId, encodedKey }), 0);
      const joined = logLines.join('\n');
      assert.ok(joined.includes('/otp/v1.0/appkeys/'), 'the log stream is captured');
      assert.ok(!joined.includes(encodedKey), 'encodedKey in the logs');
      assert.ok(!joined.includes(`/codes/${referenceTotp(encodedKey, Date.now())}`));
    });
  });
}
