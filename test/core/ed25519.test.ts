import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519Implementation, signEd25519 } from '../../src/core/ed25519.js';
import { ed25519FromSeed } from '../../src/core/jws.js';

/** RFC 8032 §7.1, TEST 1–3: secret key (the seed), message, signature; all hex. */
const RFC8032_VECTORS: [string, string, string][] = [
  [
    '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    '',
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  ],
  [
    '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    '72',
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  ],
  [
    'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    'af82',
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  ],
];

const MODULE = new URL('../../src/core/ed25519.js', import.meta.url).href;
const JWS_MODULE = new URL('../../src/core/jws.js', import.meta.url).href;

/**
 * Runs src/core/ed25519.js in a child process where `sodium-native` cannot be required, as on a platform
 * the optional addon has no build for, and returns what it signed there.
 */
function signWithoutSodium(vectors: [string, string][]): { implementation: string; signatures: string[] } {
  // The module requires the addon through createRequire, so node's CommonJS resolver is where to refuse it.
  const script = `
    const Module = (await import('node:module')).default;
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'sodium-native') throw Object.assign(new Error('no build for this platform'), { code: 'MODULE_NOT_FOUND' });
      return resolve.call(this, request, ...rest);
    };
    const { ed25519Implementation, signEd25519 } = await import(${JSON.stringify(MODULE)});
    const { ed25519FromSeed } = await import(${JSON.stringify(JWS_MODULE)});
    const signatures = ${JSON.stringify(vectors)}.map(([seed, message]) =>
      signEd25519(Buffer.from(message, 'hex'), ed25519FromSeed(Buffer.from(seed, 'hex')).privateKey).toString('hex'));
    process.stdout.write(JSON.stringify({ implementation: ed25519Implementation, signatures }));`;
  const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(output) as { implementation: string; signatures: string[] };
}

describe('Ed25519 signatures (src/core/ed25519.js)', () => {
  it('signs through libsodium here: sodium-native is installed with the project (an optional dependency)', () => {
    assert.equal(ed25519Implementation, 'libsodium');
  });

  it("gives RFC 8032's signatures for its test vectors", () => {
    for (const [seed, message, signature] of RFC8032_VECTORS) {
      const { privateKey } = ed25519FromSeed(Buffer.from(seed, 'hex'));
      assert.equal(signEd25519(Buffer.from(message, 'hex'), privateKey).toString('hex'), signature);
    }
  });

  it("gives node:crypto's signature, byte for byte, for any key and message (Ed25519 is deterministic)", () => {
    for (let i = 0; i < 300; i++) {
      const { privateKey } = ed25519FromSeed(randomBytes(32));
      const message = randomBytes(i * 7);
      assert.deepEqual(signEd25519(message, privateKey), sign(null, message, privateKey), `message of ${message.length} bytes`);
      // The second signature with the same key comes from the key kept for it, and is the same.
      assert.deepEqual(signEd25519(message, privateKey), sign(null, message, privateKey));
    }
    // A key made by node itself, not from a seed.
    const { privateKey } = generateKeyPairSync('ed25519');
    assert.deepEqual(signEd25519(Buffer.from('otpd'), privateKey), sign(null, Buffer.from('otpd'), privateKey));
  });

  it("refuses what cannot sign with node:crypto's own error: a public key, an X25519 key", () => {
    const pair = ed25519FromSeed(randomBytes(32));
    const x25519 = generateKeyPairSync('x25519').privateKey;
    for (const key of [pair.publicKey, x25519]) {
      let expected: unknown;
      try {
        sign(null, Buffer.from('x'), key);
      } catch (error) {
        expected = error;
      }
      assert.ok(expected instanceof Error);
      assert.throws(() => signEd25519(Buffer.from('x'), key), { message: expected.message });
    }
  });

  it('falls back to node:crypto where sodium-native cannot load, with the same signatures', () => {
    const { implementation, signatures } = signWithoutSodium(RFC8032_VECTORS.map(([seed, message]) => [seed, message]));
    assert.equal(implementation, 'node:crypto');
    assert.deepEqual(signatures, RFC8032_VECTORS.map(([, , signature]) => signature));
  });
});
