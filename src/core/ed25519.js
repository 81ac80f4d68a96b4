// @ts-check
/**
 * Ed25519 signatures (RFC 8032 §5.1.6) through libsodium when the optional `sodium-native` addon loads,
 * through node:crypto (OpenSSL) otherwise. Ed25519 is deterministic, so both give the same 64 bytes for
 * the same key and input (test/core/ed25519.test.ts checks it); only the cost differs: libsodium signs in
 * about half OpenSSL 3's time (16–17 against 32–37 µs on the benchmark machine, docs/performance.md), and
 * an approved check signs a receipt every time.
 *
 * Plain JavaScript for the reason src/store/sqlite/checkpoint-worker.js gives: the signing thread
 * (src/core/signing-worker.js) imports it too, and a worker thread has no TypeScript loader.
 * `ed25519.d.ts` beside it gives TypeScript its types.
 */
import { sign } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * @typedef {{
 *   crypto_sign_detached(signature: Buffer, message: Buffer, secretKey: Buffer): void,
 *   crypto_sign_seed_keypair(publicKey: Buffer, secretKey: Buffer, seed: Buffer): void,
 *   sodium_malloc(size: number): Buffer,
 * }} Sodium
 */

/** libsodium, or undefined where the optional addon is not installed or has no build for this platform. */
const sodium = /** @type {Sodium | undefined} */ (loadSodium());

function loadSodium() {
  try {
    return createRequire(import.meta.url)('sodium-native');
  } catch {
    return undefined;
  }
}

/** Which implementation signs in this process (`otpd doctor` reports it). */
export const ed25519Implementation = sodium ? 'libsodium' : 'node:crypto';

/**
 * libsodium's 64-byte secret keys (seed, then public key; RFC 8032 §5.1.5) by the KeyObject they were
 * made from, so a key is exported and expanded once. The bytes sit in `sodium_malloc` memory: locked out of
 * swap, with guard pages, and zeroed when freed.
 *
 * @type {WeakMap<import('node:crypto').KeyObject, Buffer>}
 */
const secretKeys = new WeakMap();

/** @param {import('node:crypto').KeyObject} key */
function secretKeyOf(key) {
  let secretKey = secretKeys.get(key);
  if (secretKey === undefined && sodium) {
    const { d } = /** @type {{ d: string }} */ (key.export({ format: 'jwk' }));
    const seed = Buffer.from(d, 'base64url');
    secretKey = sodium.sodium_malloc(64);
    sodium.crypto_sign_seed_keypair(Buffer.alloc(32), secretKey, seed);
    seed.fill(0);
    secretKeys.set(key, secretKey);
  }
  return secretKey;
}

/**
 * The Ed25519 signature of `message` under `privateKey`. Anything but an Ed25519 private key goes to
 * node:crypto, which refuses it with its own error.
 *
 * @param {Buffer} message
 * @param {import('node:crypto').KeyObject} privateKey
 * @returns {Buffer}
 */
export function signEd25519(message, privateKey) {
  if (sodium && privateKey.type === 'private' && privateKey.asymmetricKeyType === 'ed25519') {
    const signature = Buffer.allocUnsafe(64);
    sodium.crypto_sign_detached(signature, message, /** @type {Buffer} */ (secretKeyOf(privateKey)));
    return signature;
  }
  // Ed25519 hashes internally: node's sign takes no digest algorithm for it (null).
  return sign(null, message, privateKey);
}
