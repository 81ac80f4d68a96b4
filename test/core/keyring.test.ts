import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/core/keyring.js';
import { isOtpdError } from '../../src/errors.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('keyring', () => {
  it('derives a different subkey for every purpose and every secret', () => {
    const ring = new Keyring(A);
    assert.notDeepEqual(ring.subkey('code-hash'), ring.subkey('factor-secret'));
    assert.notDeepEqual(new Keyring(A).subkey('code-hash'), new Keyring(B).subkey('code-hash'));
    assert.deepEqual(new Keyring(A).subkey('code-hash'), new Keyring(A).subkey('code-hash'));
  });

  it('encrypts with AES-256-GCM under the current key id and decrypts with the context it was bound to', () => {
    const ring = new Keyring(A);
    const blob = ring.encrypt('outbox', 'hello', 'ctx-1');
    assert.equal(Keyring.kidOf(blob), ring.currentKid);
    assert.ok(!blob.includes('hello'));
    assert.equal(ring.decrypt('outbox', blob, 'ctx-1'), 'hello');
    assert.throws(() => ring.decrypt('outbox', blob, 'ctx-2'), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
    assert.throws(() => ring.decrypt('factor-secret', blob, 'ctx-1'), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
  });

  it('fails closed under another secret, and reads old data during a rotation', () => {
    const old = new Keyring(A);
    const blob = old.encrypt('outbox', 'secret data');
    assert.throws(() => new Keyring(B).decrypt('outbox', blob), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
    const rotating = new Keyring(B, A);
    assert.equal(rotating.decrypt('outbox', blob), 'secret data');
    assert.notEqual(Keyring.kidOf(rotating.encrypt('outbox', 'x')), old.currentKid);
    assert.deepEqual(rotating.kids, [new Keyring(B).currentKid, old.currentKid]);
  });

  it('detects tampering', () => {
    const ring = new Keyring(A);
    const blob = ring.encrypt('outbox', 'hello');
    const parts = blob.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0]! ^= 1;
    parts[3] = flipped.toString('base64url');
    assert.throws(() => ring.decrypt('outbox', parts.join('.')), (error) => isOtpdError(error, 'SECRET_MISMATCH'));
  });
});
