import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestResponse, type TestServer } from '../../helper.js';
import { STORE_BACKENDS } from '../../support/backends.js';
import { codeSentTo } from '../../support/outbox.js';

/**
 * Seed 003 (POST /v1/otp/ with {email|phoneNumber, userId}) and the verify otpd adds, through a real server
 * on SQLite and on Redis: the documented request and response at every path the seed names, each 400 the
 * seed calls malformed, and verify answers that tell nothing about which user ids exist (decisions 13).
 */

let counter = 0;
function fresh(): { userId: string; email: string; phone: string } {
  counter += 1;
  const n = `${process.pid % 10_000}${String(counter).padStart(4, '0')}`;
  return { userId: `63fcedad5ab92b52bf${n}`, email: `user${n}@zap.example`, phone: `+234801${n.padStart(7, '0').slice(-7)}` };
}

function assertError(response: TestResponse, message: RegExp | string, status = 400): void {
  assert.equal(response.status, status, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(response.body), ['success', 'message']);
  assert.equal(response.body.success, false);
  if (typeof message === 'string') assert.equal(response.body.message, message);
  else assert.match(response.body.message, message);
}

for (const backend of STORE_BACKENDS) {
  describe(`seed 003 user OTP (${backend.name})`, () => {
    let server: TestServer;
    const post = (path: string, body: unknown, options: { apiKey?: string | null; headers?: Record<string, string> } = {}) => server.request('POST', path, body, { apiKey: null, ...options });

    before(async () => {
      server = await startTestServer(backend.env());
    });
    after(async () => server.close());

    describe('the documented request and response', () => {
      for (const path of ['/v1/otp/', '/v1/otp', '/api/v1/otp/', '/api/v1/otp']) {
        it(`email at ${path}: 200 {"success": true, "data": "OTP Generated"}, the code arrives by email and verifies`, async () => {
          const user = fresh();
          const response = await post(path, { email: user.email, userId: user.userId });
          assert.equal(response.status, 200, response.text);
          assert.match(response.headers.get('content-type') ?? '', /^application\/json; charset=utf-8/);
          assert.deepEqual(response.body, { success: true, data: 'OTP Generated' });
          const code = await codeSentTo(server, user.email);
          assert.equal(server.messages().find((message) => message.to === user.email)?.channel, 'email');
          const verifyPath = path.replace(/\/?$/, '/verify');
          const verified = await post(verifyPath, { userId: user.userId, otp: code });
          assert.equal(verified.status, 200, verified.text);
          assert.deepEqual(verified.body, { success: true, data: 'OTP Verified' });
        });
      }

      it('phoneNumber: the code arrives by SMS; the verify path works with a trailing slash too', async () => {
        const user = fresh();
        const response = await post('/v1/otp/', { phoneNumber: user.phone, userId: user.userId });
        assert.deepEqual(response.body, { success: true, data: 'OTP Generated' });
        const code = await codeSentTo(server, user.phone);
        assert.equal(server.messages().find((message) => message.to === user.phone)?.channel, 'sms');
        assert.deepEqual((await post('/api/v1/otp/verify/', { userId: user.userId, otp: code })).body, { success: true, data: 'OTP Verified' });
      });

      it('`UserId`, as the property table spells it, is accepted', async () => {
        const user = fresh();
        assert.equal((await post('/v1/otp/', { email: user.email, UserId: user.userId })).status, 200);
        assert.equal((await post('/v1/otp/verify', { UserId: user.userId, otp: await codeSentTo(server, user.email) })).status, 200);
      });
    });

    describe('400 for what the seed calls malformed, naming field and rule', () => {
      it('no Content-Type, or a wrong one', async () => {
        const noType = await fetch(`${server.url}/v1/otp/`, { method: 'POST', body: new TextEncoder().encode(JSON.stringify({ email: 'a@b.example', userId: 'u' })), signal: AbortSignal.timeout(10_000) });
        assertError({ status: noType.status, headers: noType.headers, text: '', body: await noType.json() }, 'Content-Type: must be application/json');
        assertError(await post('/v1/otp/', JSON.stringify({ email: 'a@b.example', userId: 'u' }), { headers: { 'content-type': 'text/plain' } }), 'Content-Type: must be application/json');
        assertError(await post('/api/v1/otp/', 'email=a%40b.example&userId=u', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 'Content-Type: must be application/json');
      });

      it('invalid JSON, or JSON that is not an object', async () => {
        assertError(await post('/v1/otp/', '{"email": "a@b.example", "userId": '), 'body: is not valid JSON');
        assertError(await post('/api/v1/otp/', '"userId"'), 'body: must be a JSON object');
      });

      const cases: [string, Record<string, unknown>, string][] = [
        ['no userId', { email: 'adminuser@zap.example' }, 'userId: is required'],
        ['userId not a string', { email: 'adminuser@zap.example', userId: 42 }, 'userId: must be a string of 1 to 128 printable characters'],
        ['email over 320 characters', { email: `${'a'.repeat(310)}@zap.example`, userId: 'u1' }, 'email: must be at most 320 characters'],
        ['email not an address', { email: 'adminuser.zap.example', userId: 'u1' }, 'email: must be an email address such as name@example.com'],
        ['phone without +', { phoneNumber: '2348011111111', userId: 'u1' }, 'phoneNumber: must start with + and the country code'],
        ['phone over 15 digits', { phoneNumber: '+2348011111111111', userId: 'u1' }, 'phoneNumber: must have at most 15 digits after the +'],
        ['phone with spaces', { phoneNumber: '+234 801 111 1111', userId: 'u1' }, 'phoneNumber: must be + followed by digits only'],
        ['neither address', { userId: 'u1' }, 'email: give email or phoneNumber'],
        ['both addresses', { email: 'adminuser@zap.example', phoneNumber: '+2348011111111', userId: 'u1' }, 'phoneNumber: give either email or phoneNumber, not both'],
      ];
      for (const [name, body, message] of cases) {
        it(name, async () => {
          assertError(await post('/v1/otp/', body), message);
          assertError(await post('/api/v1/otp', body), message);
        });
      }

      it('verify: no userId, no otp, an otp that is not digits', async () => {
        assertError(await post('/v1/otp/verify', { otp: '123456' }), 'userId: is required');
        assertError(await post('/v1/otp/verify', { userId: 'u1' }), 'otp: is required');
        assertError(await post('/v1/otp/verify', { userId: 'u1', otp: '12ab56' }), 'otp: must be a string of 4 to 10 digits');
      });
    });

    describe('verify', () => {
      it('a wrong code is a 400 that says so; the right one still works afterwards', async () => {
        const user = fresh();
        await post('/v1/otp/', { email: user.email, userId: user.userId });
        const code = await codeSentTo(server, user.email);
        const wrong = code === '000000' ? '000001' : '000000';
        assertError(await post('/v1/otp/verify', { userId: user.userId, otp: wrong }), 'otp: is incorrect or has expired');
        assert.equal((await post('/v1/otp/verify', { userId: user.userId, otp: code })).status, 200);
      });

      it('a verified code cannot be used again', async () => {
        const user = fresh();
        await post('/v1/otp/', { email: user.email, userId: user.userId });
        const code = await codeSentTo(server, user.email);
        assert.equal((await post('/v1/otp/verify', { userId: user.userId, otp: code })).status, 200);
        assertError(await post('/v1/otp/verify', { userId: user.userId, otp: code }), 'otp: is incorrect or has expired');
      });

      it('an unknown userId answers exactly like a wrong code, and locks at the same attempt (decisions 13)', async () => {
        const known = fresh();
        const unknown = fresh();
        await post('/v1/otp/', { email: known.email, userId: known.userId });
        const code = await codeSentTo(server, known.email);
        const wrong = code === '000000' ? '000001' : '000000';
        for (let attempt = 1; attempt <= 6; attempt++) {
          const a = await post('/v1/otp/verify', { userId: known.userId, otp: wrong });
          const b = await post('/v1/otp/verify', { userId: unknown.userId, otp: wrong });
          assert.equal(a.status, b.status, `attempt ${attempt}`);
          assert.equal(a.text, b.text, `attempt ${attempt}`);
          assert.deepEqual([...a.headers.keys()].sort(), [...b.headers.keys()].sort());
          assertError(a, attempt < 5 ? 'otp: is incorrect or has expired' : 'otp: too many wrong attempts; request a new OTP');
        }
        // Locked: the right code is refused too (standards T1) …
        assertError(await post('/v1/otp/verify', { userId: known.userId, otp: code }), 'otp: too many wrong attempts; request a new OTP');
        // … until a new OTP is requested (past the app's destinationCooldown, here switched off).
        await server.server.services.apps.update('default', { destinationCooldown: 0 });
        try {
          assert.equal((await post('/v1/otp/', { email: known.email, userId: known.userId })).status, 200);
        } finally {
          await server.server.services.apps.update('default', { destinationCooldown: 30 });
        }
        assert.equal((await post('/v1/otp/verify', { userId: known.userId, otp: await codeSentTo(server, known.email, 2) })).status, 200);
      });

      it('a new verification to an address inside destinationCooldown is refused naming the field', async () => {
        const user = fresh();
        const other = fresh();
        assert.equal((await post('/v1/otp/', { phoneNumber: user.phone, userId: user.userId })).status, 200);
        const refused = await post('/v1/otp/', { phoneNumber: user.phone, userId: other.userId });
        assertError(refused, /^phoneNumber: a code was sent to this destination less than 30 s ago/);
        assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      });

      it('a repeat generate for the same address is a resend: new code, cooldown applies (Retry-After)', async () => {
        await server.server.services.apps.update('default', { resendCooldown: 0 });
        const user = fresh();
        try {
          await post('/v1/otp/', { email: user.email, userId: user.userId });
          const first = await codeSentTo(server, user.email);
          assert.equal((await post('/v1/otp/', { email: user.email, userId: user.userId })).status, 200);
          const second = await codeSentTo(server, user.email, 2);
          if (first !== second) assertError(await post('/v1/otp/verify', { userId: user.userId, otp: first }), 'otp: is incorrect or has expired');
          assert.equal((await post('/v1/otp/verify', { userId: user.userId, otp: second })).status, 200);
        } finally {
          await server.server.services.apps.update('default', { resendCooldown: 30 });
        }
        const other = fresh();
        await post('/v1/otp/', { email: other.email, userId: other.userId });
        const again = await post('/v1/otp/', { email: other.email, userId: other.userId });
        assertError(again, /^userId: an OTP was sent moments ago; wait \d+ s before requesting another$/);
        assert.ok(Number(again.headers.get('retry-after')) >= 1);
      });
    });

    describe('keys', () => {
      it('keylessAccess off: 401 without a key, the app of the key with one; an unknown key is refused', async () => {
        await server.server.services.apps.update('default', { keylessAccess: false });
        try {
          const user = fresh();
          assertError(await post('/v1/otp/', { email: user.email, userId: user.userId }), /^Authorization: .*keylessAccess is off$/, 401);
          assert.equal((await post('/v1/otp/', { email: user.email, userId: user.userId }, { apiKey: server.apiKey })).status, 200);
          assert.equal((await post('/v1/otp/verify', { userId: user.userId, otp: await codeSentTo(server, user.email) }, { apiKey: server.apiKey })).status, 200);
        } finally {
          await server.server.services.apps.update('default', { keylessAccess: true });
        }
        assertError(await post('/v1/otp/', { email: 'x@zap.example', userId: 'x' }, { apiKey: 'otpd_unknown_key_000000000000' }), 'Authorization: this API key is unknown or revoked', 401);
      });

      it("another app's user ids are separate", async () => {
        const other = await server.server.services.apps.create(`uo-${backend.name}-${process.pid}`, {});
        const user = fresh();
        await post('/v1/otp/', { email: user.email, userId: user.userId });
        const code = await codeSentTo(server, user.email);
        assertError(await post('/v1/otp/verify', { userId: user.userId, otp: code }, { apiKey: other.apiKey }), 'otp: is incorrect or has expired');
        assert.equal((await post('/v1/otp/verify', { userId: user.userId, otp: code })).status, 200);
      });
    });
  });
}
