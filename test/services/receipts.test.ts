import assert from 'node:assert/strict';
import { createHash, createPublicKey, pbkdf2, verify, type JsonWebKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Keyring } from '../../src/core/keyring.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { ReceiptsService } from '../../src/services/receipts.js';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { pendingVerification } from '../support/fixtures.js';

/**
 * Signed approval receipts, checked the way a relying party would: with node:crypto alone against the JWK
 * Set otpd publishes, not with otpd's own JWS code.
 */
const OLD_SECRET = 'receipts-old-secret-0123456789-abcdefghijklmn';
const NEW_SECRET = 'receipts-new-secret-9876543210-nmlkjihgfedcba';

interface Jwk extends JsonWebKey {
  kid: string;
}

/** An independent compact-JWS check: header, payload and an Ed25519 signature over `header.payload`. */
function verifyReceipt(jws: string, jwks: { keys: Jwk[] }): { header: any; claims: any } | undefined {
  const [header, payload, signature] = jws.split('.');
  if (!header || !payload || !signature) return undefined;
  const parsedHeader = JSON.parse(Buffer.from(header, 'base64url').toString());
  const jwk = jwks.keys.find((key) => key.kid === parsedHeader.kid);
  if (!jwk || parsedHeader.alg !== 'EdDSA') return undefined;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  if (!verify(null, Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'))) return undefined;
  return { header: parsedHeader, claims: JSON.parse(Buffer.from(payload, 'base64url').toString()) };
}

function approvedRecord(overrides: Partial<VerificationRecord> = {}): VerificationRecord {
  const now = Date.now();
  return { ...pendingVerification(Buffer.alloc(32), 'app_1', '+15555550100', now, { status: 'approved', codeHash: 'x', codeKid: 'k', deliveryStatus: 'sent', deliveryProvider: 'log' }), id: 've_01j0000000abcd000000000000', ...overrides };
}

describe('receipts service', () => {
  it('derives the same Ed25519 key from the same secret in every process, and another from another secret', () => {
    const a = new ReceiptsService(new Keyring(OLD_SECRET), Date.now).jwks();
    const b = new ReceiptsService(new Keyring(OLD_SECRET), Date.now).jwks();
    const c = new ReceiptsService(new Keyring(NEW_SECRET), Date.now).jwks();
    assert.deepEqual(a, b);
    assert.equal(a.keys.length, 1);
    assert.deepEqual({ ...a.keys[0], x: undefined }, { kty: 'OKP', crv: 'Ed25519', x: undefined, kid: new Keyring(OLD_SECRET).currentKid, alg: 'EdDSA', use: 'sig' });
    assert.equal(Buffer.from(a.keys[0]!.x, 'base64url').length, 32);
    assert.notEqual(a.keys[0]!.x, c.keys[0]!.x);
  });

  it('lists the current and the previous key during a rotation, so receipts signed before it still verify', async () => {
    const before = new ReceiptsService(new Keyring(OLD_SECRET), Date.now);
    const receipt = await before.issue(approvedRecord());
    const during = new ReceiptsService(new Keyring(NEW_SECRET, OLD_SECRET), Date.now);
    const jwks = during.jwks() as { keys: Jwk[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid), [new Keyring(NEW_SECRET).currentKid, new Keyring(OLD_SECRET).currentKid]);
    assert.ok(verifyReceipt(receipt, jwks), 'an old receipt verifies with the rotation JWKS');
    assert.ok(verifyReceipt(await during.issue(approvedRecord()), jwks));
    const afterwards = new ReceiptsService(new Keyring(NEW_SECRET), Date.now).jwks() as { keys: Jwk[] };
    assert.equal(verifyReceipt(receipt, afterwards), undefined, 'once the old secret is gone, so is its key');
  });

  it('states the verification, app, hashed destination, channel and time; a changed claim breaks the signature', async () => {
    const service = new ReceiptsService(new Keyring(OLD_SECRET), () => 1_750_000_000_123);
    const receipt = await service.issue(approvedRecord({ to: 'Person@example.com', channel: 'email' }));
    const checked = verifyReceipt(receipt, service.jwks() as { keys: Jwk[] })!;
    assert.deepEqual(checked.header, { alg: 'EdDSA', kid: new Keyring(OLD_SECRET).currentKid, typ: 'JWT' });
    assert.deepEqual(checked.claims, {
      sub: 've_01j0000000abcd000000000000',
      app: 'app_1',
      to_hash: createHash('sha256').update('Person@example.com').digest('base64url'),
      channel: 'email',
      status: 'approved',
      iat: 1_750_000_000,
    });
    const [header, payload, signature] = receipt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...checked.claims, sub: 've_someone_else' })).toString('base64url');
    assert.equal(verifyReceipt(`${header}.${forged}.${signature}`, service.jwks() as { keys: Jwk[] }), undefined);
    assert.ok(payload);
  });

  it('signs receipts asked for together (on the thread pool) each over its own claims', async () => {
    const service = new ReceiptsService(new Keyring(OLD_SECRET), Date.now);
    const jwks = service.jwks() as { keys: Jwk[] };
    const ids = Array.from({ length: 40 }, (_, i) => `ve_01j0000000abcd0000000000${String(i).padStart(2, '0')}`);
    const receipts = await Promise.all(ids.map((id) => service.issue(approvedRecord({ id }))));
    assert.deepEqual(receipts.map((receipt) => verifyReceipt(receipt, jwks)?.claims.sub), ids);
    // And alone again afterwards (inline).
    assert.equal(verifyReceipt(await service.issue(approvedRecord({ id: ids[0]! })), jwks)?.claims.sub, ids[0]);
  });

  it('signs a lone receipt inline, and every receipt of a turn that asks for several on the thread pool', async () => {
    const service = new ReceiptsService(new Keyring(OLD_SECRET), Date.now);
    const jwks = service.jwks() as { keys: Jwk[] };
    const order: string[] = [];
    // Every thread of libuv's pool busy for a while: what is signed on the pool waits for one to free.
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const busy = Array.from({ length: threads }, () => new Promise<void>((resolve) => pbkdf2('busy', 'salt', 300_000, 32, 'sha256', () => {
      order.push('a pool thread freed');
      resolve();
    })));
    const lone = await service.issue(approvedRecord({ id: 've_01j0000000abcd000000000lone' }));
    order.push('lone receipt signed');
    // The pair, asked for in a turn of its own.
    await new Promise((resolve) => setImmediate(resolve));
    const pair = ['p1', 'p2'].map((name) => service.issue(approvedRecord({ id: `ve_01j0000000abcd00000000000${name}` })).then((receipt) => {
      order.push(`${name} signed`);
      return receipt;
    }));
    await Promise.all(busy);
    const [first, second] = await Promise.all(pair);
    assert.equal(order[0], 'lone receipt signed', `the lone receipt did not wait for the pool (${order.join(', ')})`);
    for (const name of ['p1', 'p2']) assert.ok(order.indexOf(`${name} signed`) > order.indexOf('a pool thread freed'), `${name} was signed on the pool (${order.join(', ')})`);
    assert.deepEqual([lone, first!, second!].map((receipt) => verifyReceipt(receipt, jwks)?.claims.sub), ['ve_01j0000000abcd000000000lone', 've_01j0000000abcd00000000000p1', 've_01j0000000abcd00000000000p2']);
  });
});

for (const backend of STORE_BACKENDS) {
  describe(`receipts over HTTP (${backend.name})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(backend.env());
    });
    after(async () => {
      await t.close();
    });

    it('an approved check answers a receipt that verifies offline with /.well-known/jwks.json', async () => {
      const to = `+1555${String(Date.now() % 10_000_000).padStart(7, '0')}`;
      const created = await t.request('POST', '/v1/verifications', { to });
      const code = await t.codeFor(created.body.id);
      const wrongCode = code === '000000' ? '111111' : '000000';
      const wrong = await t.request('POST', `/v1/verifications/${created.body.id}/check`, { code: wrongCode });
      assert.equal(wrong.body.valid, false);
      assert.equal('receipt' in wrong.body, false, 'no receipt for a wrong code');
      const right = await t.request('POST', `/v1/verifications/${created.body.id}/check`, { code });
      assert.equal(right.body.valid, true);
      assert.match(right.body.receipt, /^[\w-]+\.[\w-]+\.[\w-]+$/);

      const jwks = await t.request('GET', '/.well-known/jwks.json', undefined, { apiKey: null });
      assert.equal(jwks.status, 200);
      assert.match(jwks.headers.get('cache-control') ?? '', /max-age=300/);
      const checked = verifyReceipt(right.body.receipt, jwks.body);
      assert.ok(checked, 'the signature holds under the published key');
      assert.equal(checked.claims.sub, created.body.id);
      assert.equal(checked.claims.to_hash, createHash('sha256').update(to).digest('base64url'));
      assert.equal(checked.claims.channel, 'sms');
      assert.equal(checked.claims.status, 'approved');
      assert.ok(Math.abs(checked.claims.iat - Date.now() / 1000) < 60);
      const replay = await t.request('POST', `/v1/verifications/${created.body.id}/check`, { code });
      assert.equal('receipt' in replay.body, false, 'a replayed code gets no receipt');
    });

    it('check by destination answers a receipt too', async () => {
      const to = `+1556${String(Date.now() % 10_000_000).padStart(7, '0')}`;
      const created = await t.request('POST', '/v1/verifications', { to });
      const code = await t.codeFor(created.body.id);
      const right = await t.request('POST', '/v1/verifications/check', { to, code });
      assert.equal(right.body.valid, true);
      const jwks = await t.request('GET', '/.well-known/jwks.json', undefined, { apiKey: null });
      assert.equal(verifyReceipt(right.body.receipt, jwks.body)?.claims.sub, created.body.id);
    });
  });
}
