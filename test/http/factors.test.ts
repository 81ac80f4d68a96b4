import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { URI } from 'otpauth';
import { startTestServer, type TestServer } from '../helper.js';
import { decodeQrPng } from '../support/qr.js';
import { referenceBase32Decode, referenceHotp, referenceTotp } from '../support/otp-reference.js';
import { deleteKeysWithPrefix, inspectionClient, uniquePrefix } from '../support/redis-keys.js';

/**
 * The native `/v1/factors` API end to end with real time, on SQLite and on Redis. On Redis two otpd
 * instances share the store and requests alternate between them, so attempt counting and replay guards
 * are shown to hold across instances. (The exact time-window rules are tested with an injected clock in
 * test/services/factors.test.ts.)
 */
const REDIS_URL = 'redis://127.0.0.1:6379';
const OTHER_SECRET = 'another-server-secret-9876543210-zyxwvutsrqpo';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const wrongCodeFor = (code: string) => String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');

for (const backend of ['sqlite', 'redis'] as const) {
  describe(`native factors API (${backend})`, () => {
    let a: TestServer;
    /** A second instance on the same store (Redis), or the same server (SQLite). */
    let b: TestServer;
    const prefix = uniquePrefix('http-factors');
    const env: Record<string, string> = backend === 'redis' ? { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: prefix } : {};
    const logLines: string[] = [];

    before(async () => {
      const logStream = new PassThrough();
      logStream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
      a = await startTestServer({ ...env, OTPD_LOG_LEVEL: 'info' }, { logStream });
      b = backend === 'redis' ? await startTestServer({ ...env, OTPD_LOG_LEVEL: 'info' }, { logStream }) : a;
    });
    after(async () => {
      await a.close();
      if (b !== a) await b.close();
      if (backend === 'redis') {
        const client = inspectionClient(REDIS_URL);
        await deleteKeysWithPrefix(client, prefix).finally(() => client.disconnect());
      }
    });

    async function enrol(body: Record<string, unknown> = {}) {
      const response = await a.request('POST', '/v1/factors', { type: 'totp', account: 'alice@example.com', ...body });
      assert.equal(response.status, 201, response.text);
      return response.body;
    }
    const verify = (server: TestServer, id: string, code: string, apiKey?: string) =>
      server.request('POST', `/v1/factors/${id}/verify`, { code }, apiKey ? { apiKey } : {});

    it('needs an API key', async () => {
      const response = await a.request('POST', '/v1/factors', { type: 'totp', account: 'x' }, { apiKey: null });
      assert.equal(response.status, 401);
    });

    it('A4: enrolment returns secret, otpauth URI and a plain-base64 PNG QR that decodes to the same URI and secret', async () => {
      const body = await enrol({ issuer: 'ACME Co' });
      assert.match(body.id, /^fa_/);
      assert.deepEqual([body.type, body.status, body.account, body.issuer, body.algorithm, body.digits, body.period], ['totp', 'unverified', 'alice@example.com', 'ACME Co', 'SHA1', 6, 30]);
      assert.match(body.secret, /^[A-Z2-7]{32}$/);
      assert.ok(!body.qr.png.startsWith('data:'), 'png must be plain base64 (decisions 18)');
      assert.match(body.qr.png, /^iVBORw0KGgo[A-Za-z0-9+/]+=*$/);
      assert.equal(decodeQrPng(body.qr.png), body.uri);
      assert.match(body.qr.svg, /^<svg/);
      const parsed = URI.parse(body.uri);
      assert.equal(parsed.secret.base32, body.secret);
      assert.equal(parsed.issuer, 'ACME Co');
      assert.equal(parsed.label, 'alice@example.com');
      assert.equal(new URL(body.uri).searchParams.get('issuer'), 'ACME Co');
      assert.ok(body.uri.startsWith('otpauth://totp/ACME%20Co:alice%40example.com?secret='));
      // The default issuer is the app's name.
      assert.equal((await enrol()).issuer, 'default');
    });

    it('GET never returns the secret or the QR code', async () => {
      const created = await enrol();
      const response = await b.request('GET', `/v1/factors/${created.id}`);
      assert.equal(response.status, 200);
      assert.equal(response.body.id, created.id);
      assert.equal(response.body.status, 'unverified');
      assert.ok(!response.text.includes(created.secret));
      for (const field of ['secret', 'uri', 'qr']) assert.ok(!(field in response.body), field);
    });

    it('A2: bad enrolments are 400s naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ type: 'totp', account: 'a', digits: 4 }, 'digits'],
        [{ type: 'totp', account: 'a', digits: 7 }, 'digits'],
        [{ type: 'totp', account: 'a', period: 45 }, 'period'],
        [{ type: 'hotp', account: 'a', period: 30 }, 'period'],
        [{ type: 'totp', account: 'a', algorithm: 'MD5' }, 'algorithm'],
        [{ type: 'totp', account: 'a:b' }, 'account'],
        [{ type: 'totp', account: 'a', issuer: 'x:y' }, 'issuer'],
        [{ type: 'sms', account: 'a' }, 'type'],
        [{ account: 'a' }, 'type'],
        [{ type: 'totp' }, 'account'],
        [{ type: 'totp', account: 'a', secret: 'JBSWY3DPEHPK3PXP' }, 'secret'],
      ];
      for (const [body, field] of cases) {
        const response = await a.request('POST', '/v1/factors', body);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.body.type, 'urn:otpd:problem:validation');
        assert.ok(response.body.errors.some((e: { field: string }) => e.field === field), `${JSON.stringify(body)} -> ${response.text}`);
      }
    });

    it('V2: a code from an independent implementation verifies the factor once; replay is rejected; two steps old is rejected', async () => {
      const created = await enrol();
      const code = referenceTotp(created.secret, Date.now());
      const first = await verify(a, created.id, code);
      assert.equal(first.status, 200);
      assert.deepEqual(first.body, { valid: true, status: 'verified' });
      const replay = await verify(b, created.id, code);
      assert.deepEqual(replay.body, { valid: false, status: 'verified', reason: 'code_reused' });
      assert.equal((await b.request('GET', `/v1/factors/${created.id}`)).body.status, 'verified');

      const other = await enrol();
      const old = await verify(b, other.id, referenceTotp(other.secret, Date.now(), { stepOffset: -2 }));
      assert.deepEqual(old.body, { valid: false, status: 'unverified', reason: 'invalid_code' });
    });

    it('V3: HOTP over HTTP: C+9 accepted, C+10 rejected', async () => {
      const created = await enrol({ type: 'hotp', digits: 8 });
      assert.equal(created.period, null);
      const key = referenceBase32Decode(created.secret);
      assert.equal((await verify(a, created.id, referenceHotp(key, 10, 'SHA1', 8))).body.valid, false);
      assert.equal((await verify(b, created.id, referenceHotp(key, 9, 'SHA1', 8))).body.valid, true);
      assert.equal((await verify(a, created.id, referenceHotp(key, 9, 'SHA1', 8))).body.reason, 'code_reused');
    });

    it(`T2: 20 concurrent right codes${backend === 'redis' ? ' across two instances' : ''} give exactly one valid`, async () => {
      const created = await enrol();
      const code = referenceTotp(created.secret, Date.now());
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => verify(i % 2 ? b : a, created.id, code)));
      assert.ok(results.every((r) => r.status === 200), results.map((r) => r.status).join());
      assert.equal(results.filter((r) => r.body.valid === true).length, 1);
      assert.ok(results.filter((r) => r.body.valid === false).every((r) => r.body.reason === 'code_reused'));
    });

    it('T1: wrong codes rotating API keys and instances lock the factor; then even the right code gets 429 FACTOR_LOCKED with Retry-After', async () => {
      const created = await enrol();
      const second = await a.server.services.apps.createKey('default');
      const keys = [a.apiKey, second.apiKey, b.apiKey];
      const wrong = wrongCodeFor(referenceTotp(created.secret, Date.now()));
      for (let i = 0; i < 5; i++) {
        const response = await verify(i % 2 ? b : a, created.id, wrong, keys[i % keys.length]);
        assert.deepEqual([response.status, response.body.valid, response.body.reason], [200, false, 'invalid_code']);
      }
      // The fifth failure locked it for 1 s; wait that out, then a sixth locks it for 2 s.
      const locked = await verify(b, created.id, wrong, second.apiKey);
      assert.equal(locked.status, 429);
      assert.equal(locked.headers.get('retry-after'), '1');
      await sleep(1050);
      const sixth = await verify(a, created.id, wrong, b.apiKey);
      assert.equal(sixth.body.valid, false);
      const right = await verify(b, created.id, referenceTotp(created.secret, Date.now()), second.apiKey);
      assert.equal(right.status, 429);
      assert.equal(right.body.type, 'urn:otpd:problem:factor-locked');
      assert.equal(right.headers.get('retry-after'), '2');
      assert.match(right.body.lockedUntil, /^\d{4}-\d\d-\d\dT/);
      assert.ok((await a.request('GET', `/v1/factors/${created.id}`)).body.lockedUntil);
    });

    it('recovery codes: 409 before verification, then ten that each verify exactly once', async () => {
      const created = await enrol();
      const early = await a.request('POST', `/v1/factors/${created.id}/recovery-codes`);
      assert.equal(early.status, 409);
      assert.equal(early.body.type, 'urn:otpd:problem:factor-not-verified');
      assert.equal((await verify(a, created.id, referenceTotp(created.secret, Date.now()))).body.valid, true);
      const issued = await b.request('POST', `/v1/factors/${created.id}/recovery-codes`);
      assert.equal(issued.status, 201);
      assert.equal(issued.body.factorId, created.id);
      assert.equal(issued.body.codes.length, 10);
      const [firstCode, secondCode] = issued.body.codes as string[];
      assert.deepEqual((await verify(a, created.id, firstCode!)).body, { valid: true, status: 'verified', recoveryCodesRemaining: 9 });
      assert.deepEqual((await verify(b, created.id, firstCode!)).body, { valid: false, status: 'verified', reason: 'code_reused', recoveryCodesRemaining: 9 });
      assert.equal((await verify(b, created.id, secondCode!.toLowerCase().replace(/-/g, ' '))).body.valid, true);
      assert.equal((await a.request('GET', `/v1/factors/${created.id}`)).body.recoveryCodesRemaining, 8);
    });

    it('DELETE removes a factor; unknown and malformed codes are clear errors', async () => {
      const created = await enrol();
      const badCode = await verify(a, created.id, '12ab');
      assert.equal(badCode.status, 400);
      assert.equal(badCode.body.errors[0].field, 'code');
      assert.equal((await a.request('POST', `/v1/factors/${created.id}/verify`, {})).body.errors[0].field, 'code');
      assert.equal((await a.request('DELETE', `/v1/factors/${created.id}`)).status, 204);
      assert.equal((await b.request('GET', `/v1/factors/${created.id}`)).status, 404);
      assert.equal((await b.request('POST', `/v1/factors/${created.id}/verify`, { code: '123456' })).status, 404);
      assert.equal((await a.request('DELETE', `/v1/factors/${created.id}`)).status, 404);
    });

    it("another app's factor answers 404 like an unknown id", async () => {
      const created = await enrol();
      const other = await a.server.services.apps.create(`other-${Date.now().toString(36)}`, {});
      assert.equal((await a.request('GET', `/v1/factors/${created.id}`, undefined, { apiKey: other.apiKey })).status, 404);
      assert.equal((await a.request('POST', `/v1/factors/${created.id}/verify`, { code: '123456' }, { apiKey: other.apiKey })).status, 404);
    });

    it('S1: with another OTPD_SECRET on the same store, verification fails with SECRET_MISMATCH, not valid:false', async () => {
      const created = await enrol();
      const other = await startTestServer({ ...env, OTPD_SECRET: OTHER_SECRET, ...(backend === 'sqlite' ? { OTPD_DATABASE: join(a.dir, 'otpd.db') } : {}) });
      try {
        // On SQLite the second process opens the same file; `a` holds no write transaction between requests.
        const response = await verify(other, created.id, referenceTotp(created.secret, Date.now()));
        assert.equal(response.status, 500);
        assert.equal(response.body.type, 'urn:otpd:problem:secret-mismatch');
        assert.match(response.body.detail, /OTPD_SECRET/);
        assert.equal(response.body.valid, undefined);
      } finally {
        await other.close();
      }
      // The original server still verifies it.
      assert.equal((await verify(a, created.id, referenceTotp(created.secret, Date.now()))).body.valid, true);
    });

    it('no secret or code reaches the logs', async () => {
      const created = await enrol();
      const code = referenceTotp(created.secret, Date.now());
      await verify(a, created.id, code);
      await sleep(50);
      const joined = logLines.join('\n');
      assert.ok(joined.includes(created.id) || joined.includes('/v1/factors'), 'the log stream is captured');
      assert.ok(!joined.includes(created.secret));
      assert.ok(!joined.includes(`"${code}"`));
    });
  });
}

describe('S1: the SQLite file never holds a factor secret', () => {
  it('S1: the Base32 secret (and its raw bytes) are absent from the database file and its WAL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-s1-'));
    const database = join(dir, 'otpd.db');
    const secrets: string[] = [];
    let ids: string[] = [];
    try {
      const server = await startTestServer({ OTPD_DATABASE: database });
      try {
        for (const body of [{ type: 'totp' }, { type: 'hotp' }, { type: 'totp', algorithm: 'SHA512', digits: 8 }]) {
          const response = await server.request('POST', '/v1/factors', { account: 'carol', ...body });
          secrets.push(response.body.secret);
          ids.push(response.body.id);
        }
      } finally {
        await server.close();
      }
      const raw = [database, `${database}-wal`].filter(existsSync).map((file) => readFileSync(file).toString('latin1')).join('\n');
      ids = ids.filter((id) => raw.includes(id));
      assert.equal(ids.length, 3, 'the factors are in the file');
      for (const secret of secrets) {
        assert.ok(!raw.includes(secret), 'Base32 secret in the database file');
        assert.ok(!raw.includes(referenceBase32Decode(secret).toString('latin1')), 'raw secret bytes in the database file');
        assert.ok(!raw.toLowerCase().includes(referenceBase32Decode(secret).toString('hex')), 'hex secret in the database file');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
