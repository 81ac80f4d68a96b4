import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519FromSeed, signCompactJws, verifyCompactJws } from '../../src/core/jws.js';

/**
 * Compact JWS over Ed25519 (RFC 7515, RFC 8037). What receipts state is tested in
 * test/services/receipts.test.ts, against node:crypto alone; here, how signatures asked for together fare.
 */
describe('compact JWS (EdDSA)', () => {
  it('signs what a turn asks for together, each over its own payload; a signature refused at once or by the pool fails alone', async () => {
    const pair = ed25519FromSeed(randomBytes(32));
    // An X25519 key cannot sign, which node reports to the callback; a public key it refuses at once.
    const keyOf = (i: number) => (i === 2 ? generateKeyPairSync('x25519').privateKey : i === 4 ? pair.publicKey : pair.privateKey);
    const asked = Array.from({ length: 6 }, (_, i) => signCompactJws({ n: i }, keyOf(i), 'k1'));
    const settled = await Promise.allSettled(asked);
    assert.deepEqual(settled.map((result) => result.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    settled.forEach((result, i) => {
      if (result.status === 'fulfilled') assert.deepEqual(verifyCompactJws(result.value, pair.publicKey)?.payload, { n: i });
    });
    // And a lone signature afterwards still comes out, with the header it names.
    const alone = await signCompactJws({ n: 'alone' }, pair.privateKey, 'k1');
    assert.deepEqual(verifyCompactJws(alone, pair.publicKey)?.header, { alg: 'EdDSA', kid: 'k1', typ: 'JWT' });
  });
});
