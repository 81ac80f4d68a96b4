import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestResponse, type TestServer } from '../../helper.js';
import { STORE_BACKENDS } from '../../support/backends.js';
import { codeSentTo } from '../../support/outbox.js';

/**
 * Seed 000 (partner-signed OTP request) through a real server on SQLite and on Redis: the partner token
 * (OAuth 2.0 client credentials), the signature helper, the OTP request by POST and GET, the verify, and
 * every ErrorCode: token required, bad and stale signatures, replay, and the fourth request's 42201.
 */

/** Decisions 17, computed here independently of the server. */
function sign(encryptKey: string, partnerId: string, getPlusId: string, timestamp: number | string): string {
  return createHmac('sha256', Buffer.from(encryptKey, 'base64')).update(`${partnerId}:${getPlusId}:${timestamp}`).digest('base64');
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function assertErrorCode(response: TestResponse, errorCode: number, description?: string | RegExp): void {
  assert.equal(response.status, Math.floor(errorCode / 100), response.text);
  assert.deepEqual(Object.keys(response.body), ['ErrorCode', 'ErrorDescription'], response.text);
  assert.equal(response.body.ErrorCode, errorCode, response.text);
  if (typeof description === 'string') assert.equal(response.body.ErrorDescription, description);
  else if (description) assert.match(response.body.ErrorDescription, description);
}

interface Partner {
  name: string;
  apiKey: string;
  partnerId: string;
  encryptKey: string;
}

let counter = 0;

for (const backend of STORE_BACKENDS) {
  describe(`seed 000 partner-signed OTP (${backend.name})`, () => {
    let server: TestServer;
    let partner: Partner;
    let token: string;

    const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => server.request(method, path, body, { apiKey: null, headers });
    const bearer = (value = token) => ({ authorization: `Bearer ${value}` });

    /** `otpd apps create NAME --json` as the CLI runs it: the partner's credentials. */
    async function createPartner(settings: Record<string, unknown> = {}): Promise<Partner> {
      counter += 1;
      const name = `partner-${backend.name}-${process.pid}-${counter}`;
      const created = await server.server.services.apps.create(name, settings);
      return { name, apiKey: created.apiKey, partnerId: created.credentials.partnerId, encryptKey: created.credentials.encryptKey };
    }

    async function tokenFor(p: Partner): Promise<string> {
      const response = await call('POST', '/security/v1/201904/oauth/token', `grant_type=client_credentials&client_id=${p.partnerId}&client_secret=${encodeURIComponent(p.encryptKey)}`, { 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(response.status, 200, response.text);
      return response.body.access_token;
    }

    /** Registers a user (GetPlusID) with a phone through the native API, with the partner app's key. */
    async function registerUser(p: Partner, contacts: Record<string, string> = {}): Promise<{ getPlusId: string; phone: string }> {
      counter += 1;
      const getPlusId = `GP${process.pid}${String(counter).padStart(5, '0')}`;
      const phone = `+6281${String(process.pid % 10_000).padStart(4, '0')}${String(counter).padStart(5, '0')}`;
      const response = await server.request('PUT', `/v1/subjects/${getPlusId}`, Object.keys(contacts).length ? contacts : { phone }, { apiKey: p.apiKey });
      assert.equal(response.status, 201, response.text);
      return { getPlusId, phone };
    }

    function signed(p: Partner, getPlusId: string, timestamp = nowSeconds()) {
      return { PartnerID: p.partnerId, GetPlusID: getPlusId, Signature: sign(p.encryptKey, p.partnerId, getPlusId, timestamp), Timestamp: String(timestamp) };
    }

    before(async () => {
      server = await startTestServer(backend.env());
      // The seed's three quick requests for one user need the app's destinationCooldown off (docs/dialects.md).
      partner = await createPartner({ destinationCooldown: 0 });
      token = await tokenFor(partner);
    });
    after(async () => server.close());

    describe('partner token: OAuth 2.0 client credentials (RFC 6749 §4.4)', () => {
      const path = '/security/v1/201904/oauth/token';

      it('form, JSON and HTTP Basic all issue a short-lived Bearer token, never cached', async () => {
        const basic = Buffer.from(`${encodeURIComponent(partner.partnerId)}:${encodeURIComponent(partner.encryptKey)}`).toString('base64');
        const answers = [
          await call('POST', path, `grant_type=client_credentials&client_id=${partner.partnerId}&client_secret=${encodeURIComponent(partner.encryptKey)}`, { 'content-type': 'application/x-www-form-urlencoded' }),
          await call('POST', path, { grant_type: 'client_credentials', client_id: partner.partnerId, client_secret: partner.encryptKey }),
          await call('POST', path, { grant_type: 'client_credentials', PartnerID: partner.partnerId, EncryptKey: partner.encryptKey }),
          await call('POST', path, 'grant_type=client_credentials', { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` }),
        ];
        for (const response of answers) {
          assert.equal(response.status, 200, response.text);
          assert.deepEqual(Object.keys(response.body).sort(), ['access_token', 'expires_in', 'token_type']);
          assert.equal(response.body.token_type, 'Bearer');
          assert.equal(response.body.expires_in, 900);
          assert.equal(response.headers.get('cache-control'), 'no-store');
          assert.equal(response.headers.get('pragma'), 'no-cache');
        }
      });

      it('errors per RFC 6749 §5.2', async () => {
        const wrongSecret = await call('POST', path, { grant_type: 'client_credentials', client_id: partner.partnerId, client_secret: Buffer.alloc(32, 1).toString('base64') });
        assert.equal(wrongSecret.status, 401);
        assert.equal(wrongSecret.body.error, 'invalid_client');
        assert.match(wrongSecret.headers.get('www-authenticate') ?? '', /^Basic /);
        const unknownClient = await call('POST', path, { grant_type: 'client_credentials', client_id: 'NOSUCHPARTNER', client_secret: partner.encryptKey });
        assert.deepEqual([unknownClient.status, unknownClient.body], [wrongSecret.status, wrongSecret.body]);
        const noGrant = await call('POST', path, { client_id: partner.partnerId, client_secret: partner.encryptKey });
        assert.deepEqual([noGrant.status, noGrant.body.error], [400, 'invalid_request']);
        assert.match(noGrant.body.error_description, /^grant_type: /);
        const password = await call('POST', path, { grant_type: 'password', client_id: partner.partnerId, client_secret: partner.encryptKey });
        assert.deepEqual([password.status, password.body.error], [400, 'unsupported_grant_type']);
        const noSecret = await call('POST', path, { grant_type: 'client_credentials', client_id: partner.partnerId });
        assert.deepEqual([noSecret.status, noSecret.body.error], [400, 'invalid_request']);
        const basic = Buffer.from(`${partner.partnerId}:${partner.encryptKey}`).toString('base64');
        const twoMethods = await call('POST', path, { grant_type: 'client_credentials', client_secret: partner.encryptKey }, { authorization: `Basic ${basic}` });
        assert.deepEqual([twoMethods.status, twoMethods.body.error], [400, 'invalid_request']);
        const badJson = await call('POST', path, '{"grant_type":');
        assert.deepEqual([badJson.status, badJson.body.error], [400, 'invalid_request']);
      });
    });

    describe('the signature helper', () => {
      const path = '/mobile/v1/202001/utils/auth/partner-signature';

      it('answers the documented Data with a signature that verifies', async () => {
        const before = nowSeconds();
        const query = new URLSearchParams({ PartnerID: partner.partnerId, EncryptKey: partner.encryptKey, GetPlusID: 'GP-1' });
        const response = await call('GET', `${path}?${query}`);
        assert.equal(response.status, 200, response.text);
        assert.deepEqual(Object.keys(response.body), ['ErrorCode', 'ErrorDescription', 'Data']);
        assert.equal(response.body.ErrorCode, 0);
        assert.equal(response.body.ErrorDescription, '');
        assert.deepEqual(Object.keys(response.body.Data), ['Timestamp', 'Signature', 'PartnerID', 'GetPlusID']);
        const data = response.body.Data;
        assert.equal(typeof data.Timestamp, 'number');
        assert.ok(data.Timestamp >= before && data.Timestamp <= nowSeconds());
        assert.equal(data.Signature, sign(partner.encryptKey, partner.partnerId, 'GP-1', data.Timestamp));
        assert.deepEqual([data.PartnerID, data.GetPlusID], [partner.partnerId, 'GP-1']);
        // An EncryptKey pasted into the URL without escaping its `+` still works.
        const raw = await call('GET', `${path}?PartnerID=${partner.partnerId}&EncryptKey=${partner.encryptKey.replace(/=/g, '%3D')}&GetPlusID=GP-1`);
        assert.equal(raw.body.ErrorCode, 0, raw.text);
      });

      it('wrong or unknown credentials: 40104; missing field: 40001; switched off: 40301', async () => {
        const wrongKey = new URLSearchParams({ PartnerID: partner.partnerId, EncryptKey: Buffer.alloc(32, 7).toString('base64'), GetPlusID: 'GP-1' });
        assertErrorCode(await call('GET', `${path}?${wrongKey}`), 40104, 'Invalid PartnerID or EncryptKey');
        const unknown = new URLSearchParams({ PartnerID: 'NOSUCHPARTNER', EncryptKey: partner.encryptKey, GetPlusID: 'GP-1' });
        assertErrorCode(await call('GET', `${path}?${unknown}`), 40104, 'Invalid PartnerID or EncryptKey');
        assertErrorCode(await call('GET', `${path}?PartnerID=${partner.partnerId}&GetPlusID=GP-1`), 40001, 'EncryptKey: is required');
        const off = await createPartner({ signatureHelper: false });
        const query = new URLSearchParams({ PartnerID: off.partnerId, EncryptKey: off.encryptKey, GetPlusID: 'GP-1' });
        assertErrorCode(await call('GET', `${path}?${query}`), 40301);
      });
    });

    describe('request OTP', () => {
      const path = '/security/v1/201904/oauth/otp';

      it('POST: the documented result, the code sent to the registered phone, then verify with the returned Data (the seed’s Postman flow)', async () => {
        const user = await registerUser(partner);
        const response = await call('POST', path, signed(partner, user.getPlusId), bearer());
        assert.equal(response.status, 200, response.text);
        assert.deepEqual(Object.keys(response.body), ['ErrorCode', 'ErrorDescription', 'Data']);
        assert.deepEqual([response.body.ErrorCode, response.body.ErrorDescription], [0, '']);
        const data = response.body.Data;
        assert.deepEqual(Object.keys(data), ['Timestamp', 'Signature', 'PartnerID', 'GetPlusID']);
        assert.equal(typeof data.Timestamp, 'number');
        assert.ok(Math.abs(data.Timestamp - nowSeconds()) <= 2);
        assert.equal(data.Signature, sign(partner.encryptKey, partner.partnerId, user.getPlusId, data.Timestamp));
        assert.deepEqual([data.PartnerID, data.GetPlusID], [partner.partnerId, user.getPlusId]);
        const code = await codeSentTo(server, user.phone);
        assert.equal(server.messages().find((message) => message.to === user.phone)?.channel, 'sms');

        const verified = await call('POST', `${path}/verify`, { PartnerID: data.PartnerID, GetPlusID: data.GetPlusID, OTP: code, Signature: data.Signature, Timestamp: data.Timestamp }, bearer());
        assert.equal(verified.status, 200, verified.text);
        assert.equal(verified.body.ErrorCode, 0);
        assert.equal(verified.body.Data.Signature, sign(partner.encryptKey, partner.partnerId, user.getPlusId, verified.body.Data.Timestamp));
        // The code is used up.
        assertErrorCode(await call('POST', `${path}/verify`, { ...signed(partner, user.getPlusId, nowSeconds() + 5), OTP: code }, bearer()), 42204);
      });

      it('GET with the fields in the query, a raw `+` in the Signature included', async () => {
        const user = await registerUser(partner);
        let timestamp = nowSeconds();
        // Find a Timestamp whose signature has a `+`, to send it unescaped as a browser bar or Postman would.
        for (let i = 0; i < 200 && !sign(partner.encryptKey, partner.partnerId, user.getPlusId, timestamp).includes('+'); i++) timestamp -= 1;
        const signature = sign(partner.encryptKey, partner.partnerId, user.getPlusId, timestamp);
        const raw = `${path}?PartnerID=${partner.partnerId}&GetPlusID=${user.getPlusId}&Signature=${signature.replace(/=/g, '%3D').replace(/\//g, '%2F')}&Timestamp=${timestamp}`;
        const response = await call('GET', raw, undefined, bearer());
        assert.equal(response.status, 200, response.text);
        assert.equal(response.body.ErrorCode, 0);
        await codeSentTo(server, user.phone);
      });

      it('the partner token is required (40100) and must be this partner’s (40300)', async () => {
        const user = await registerUser(partner);
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId)), 40100);
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId), bearer('not.a.token')), 40100);
        const [body, kid] = token.split('.');
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId), bearer(`${body}.${kid}.${'A'.repeat(43)}`)), 40100);
        // An API key is not a partner token.
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId), bearer(partner.apiKey)), 40100);
        const other = await createPartner();
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId), bearer(await tokenFor(other))), 40300);
        const noToken = await call('POST', path, signed(partner, user.getPlusId));
        assert.match(noToken.headers.get('www-authenticate') ?? '', /^Bearer /);
      });

      it('a wrong signature is 40101; a stale or future Timestamp is 40102', async () => {
        const user = await registerUser(partner);
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId), Signature: sign(Buffer.alloc(32, 9).toString('base64'), partner.partnerId, user.getPlusId, nowSeconds()) }, bearer()), 40101, 'Invalid Signature');
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId), GetPlusID: 'someone-else' }, bearer()), 40101);
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId, nowSeconds() - 301), bearer()), 40102);
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId, nowSeconds() + 301), bearer()), 40102);
        assert.equal((await call('POST', path, signed(partner, user.getPlusId, nowSeconds() - 290), bearer())).status, 200);
      });

      it('a replayed signature is refused (40103) before the quota is counted; the fourth request gets 42201', async () => {
        const user = await registerUser(partner);
        const t0 = nowSeconds();
        const first = signed(partner, user.getPlusId, t0);
        assert.equal((await call('POST', path, first, bearer())).status, 200);
        for (let i = 0; i < 3; i++) assertErrorCode(await call('POST', path, first, bearer()), 40103, /already used/);
        // Replays cost nothing: requests two and three still pass …
        assert.equal((await call('POST', path, signed(partner, user.getPlusId, t0 - 1), bearer())).status, 200);
        assert.equal((await call('POST', path, signed(partner, user.getPlusId, t0 - 2), bearer())).status, 200);
        // … and the fourth in the window is the seed's documented error.
        const fourth = await call('POST', path, signed(partner, user.getPlusId, t0 - 3), bearer());
        assert.equal(fourth.status, 422);
        assert.deepEqual(fourth.body, { ErrorCode: 42201, ErrorDescription: 'Maximum OTP reach' });
        assert.ok(Number(fourth.headers.get('retry-after')) >= 1);
        // Three messages went out, not four.
        await codeSentTo(server, user.phone, 3);
        assert.equal(server.messages().filter((message) => message.to === user.phone).length, 3);
        // The quota is per GetPlusID.
        const another = await registerUser(partner);
        assert.equal((await call('POST', path, signed(partner, another.getPlusId), bearer())).status, 200);
      });

      it('with the default destinationCooldown, a second request for the same phone at once is 42901', async () => {
        const strict = await createPartner();
        const strictToken = await tokenFor(strict);
        const user = await registerUser(strict);
        const t0 = nowSeconds();
        assert.equal((await call('POST', path, signed(strict, user.getPlusId, t0), bearer(strictToken))).status, 200);
        const again = await call('POST', path, signed(strict, user.getPlusId, t0 - 1), bearer(strictToken));
        assertErrorCode(again, 42901, /^Too many OTPs: a code was sent to this destination/);
        assert.ok(Number(again.headers.get('retry-after')) >= 1);
      });

      it('every missing field is 40001 naming it; a body that is not JSON is 40002', async () => {
        const user = await registerUser(partner);
        for (const field of ['PartnerID', 'GetPlusID', 'Signature', 'Timestamp']) {
          const body: Record<string, unknown> = signed(partner, user.getPlusId);
          delete body[field];
          assertErrorCode(await call('POST', path, body, bearer()), 40001, `${field}: is required`);
        }
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId), Timestamp: '2022-09-02T04:17:54Z' }, bearer()), 40001, /^Timestamp: must be Unix time in seconds/);
        assertErrorCode(await call('POST', path, '{"PartnerID":', bearer()), 40002, 'body: is not valid JSON');
      });

      it('an unregistered GetPlusID is 40401; one without a phone is 42202; an app without SMS is 42206', async () => {
        assertErrorCode(await call('POST', path, signed(partner, 'GP-nobody'), bearer()), 40401, 'GetPlusID is not registered');
        const emailOnly = await registerUser(partner, { email: 'getplus@example.com' });
        assertErrorCode(await call('POST', path, signed(partner, emailOnly.getPlusId), bearer()), 42202);
        const emailApp = await createPartner({ channels: ['email'] });
        const user = await registerUser(emailApp);
        assertErrorCode(await call('POST', path, signed(emailApp, user.getPlusId), bearer(await tokenFor(emailApp))), 42206);
      });
    });

    describe('verify OTP', () => {
      const path = '/security/v1/201904/oauth/otp/verify';

      it('a wrong OTP is 42203; after maxAttempts the verification locks (42205); no request yet is 42204', async () => {
        const user = await registerUser(partner);
        // Distinct Timestamps from one base, so no call reuses another's signature.
        const t0 = nowSeconds();
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId, t0), OTP: '123456' }, bearer()), 42204);
        assert.equal((await call('POST', '/security/v1/201904/oauth/otp', signed(partner, user.getPlusId, t0 - 1), bearer())).status, 200);
        const code = await codeSentTo(server, user.phone);
        const wrong = code === '000000' ? '000001' : '000000';
        for (let i = 1; i <= 4; i++) assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId, t0 - 1 - i), OTP: wrong }, bearer()), 42203, 'OTP is incorrect');
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId, t0 - 10), OTP: wrong }, bearer()), 42205);
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId, t0 - 11), OTP: code }, bearer()), 42205);
      });

      it('verify needs the token, a signature and the OTP field', async () => {
        const user = await registerUser(partner);
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId), OTP: '123456' }), 40100);
        assertErrorCode(await call('POST', path, signed(partner, user.getPlusId), bearer()), 40001, 'OTP: is required');
        assertErrorCode(await call('POST', path, { ...signed(partner, user.getPlusId), Signature: 'x', OTP: '123456' }, bearer()), 40101);
      });
    });
  });
}
