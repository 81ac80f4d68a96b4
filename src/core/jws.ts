import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { signEd25519 } from './ed25519.js';
import { SigningThread, type SignRequest } from './signing-thread.js';

/**
 * Compact JWS (RFC 7515 §7.1) signed with EdDSA over Ed25519 (RFC 8037), using node:crypto only.
 *
 * An Ed25519 private key is 32 bytes of seed (RFC 8032 §5.1.5); node:crypto imports it from PKCS#8 DER
 * (RFC 8410 §7): the fixed 16-byte prefix below, then the seed. So a key pair derived deterministically
 * from a secret (an HKDF subkey) is the same in every process, and nothing has to be stored.
 */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Ed25519KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function ed25519FromSeed(seed: Buffer): Ed25519KeyPair {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The public key as a JWK (RFC 8037 §2: kty OKP, crv Ed25519, x). */
export function publicJwk(publicKey: KeyObject, kid: string): { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg: 'EdDSA'; use: 'sig' } {
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: 'EdDSA', use: 'sig' };
}

function segment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Encoded protected headers by `kid` and `typ`: a signer uses one or two, and each is the same text every time. */
const headers = new Map<string, string>();

function headerSegment(kid: string, type: string): string {
  const cacheKey = `${type}\n${kid}`;
  let header = headers.get(cacheKey);
  if (header === undefined) {
    header = segment({ alg: 'EdDSA', kid, typ: type });
    if (headers.size >= 64) headers.clear();
    headers.set(cacheKey, header);
  }
  return header;
}

/**
 * When to sign off the event loop. An Ed25519 signature is ~15–50 µs of CPU (by machine and library,
 * src/core/ed25519.js), as much as a whole bare HTTP request, and a one-process server answers every
 * request on its one event-loop thread.
 * So the signatures asked for in one event-loop turn are decided together at its end (`setImmediate`): a
 * lone one, with none under way, is made inline, where the trip to a thread and back would only add
 * latency and CPU (thread wake-ups); the rest go to the signing thread (src/core/signing-thread.ts), a few
 * messages a turn, while a spare core makes them and the loop serves other requests. Until that thread is
 * up, and if it fails, they go one by one to libuv's thread pool (node's `sign` with a callback), which
 * costs the loop ~6 µs a signature against ~2–3 (docs/performance.md).
 */
let asked: SignRequest[] = [];
let pooledInFlight = 0;

function signOnPool(request: SignRequest): void {
  pooledInFlight += 1;
  try {
    // Ed25519 hashes internally: node's sign takes no digest algorithm for it (null).
    sign(null, Buffer.from(request.input, 'ascii'), request.privateKey, (error, signature) => {
      pooledInFlight -= 1;
      if (error) request.reject(error);
      else request.resolve(signature.toString('base64url'));
    });
  } catch (error) {
    // Refused before it reached the pool (a public key given as the private one): this request fails alone.
    pooledInFlight -= 1;
    request.reject(error);
  }
}

/** The process's signing thread; its requests go to the pool if it fails (exported for tests). */
export const signingThread = new SigningThread((requests) => requests.forEach(signOnPool));

function signAsked(): void {
  const turn = asked;
  asked = [];
  if (turn.length === 1 && pooledInFlight === 0 && signingThread.inFlight === 0) {
    const [only] = turn as [SignRequest];
    try {
      only.resolve(signEd25519(Buffer.from(only.input, 'ascii'), only.privateKey).toString('base64url'));
    } catch (error) {
      only.reject(error);
    }
    return;
  }
  if (!signingThread.take(turn)) turn.forEach(signOnPool);
}

/** The base64url Ed25519 signature of `input` (ASCII). */
function ed25519Sign(input: string, privateKey: KeyObject): Promise<string> {
  return new Promise((resolve, reject) => {
    if (asked.length === 0) setImmediate(signAsked);
    asked.push({ input, privateKey, resolve, reject });
  });
}

/** `header.payload.signature`, each base64url; `alg: EdDSA` and `kid` are set in the protected header. */
export async function signCompactJws(payload: object, privateKey: KeyObject, kid: string, type = 'JWT'): Promise<string> {
  const signingInput = `${headerSegment(kid, type)}.${segment(payload)}`;
  return `${signingInput}.${await ed25519Sign(signingInput, privateKey)}`;
}

/** The payload of a compact JWS whose EdDSA signature holds under `publicKey`; undefined otherwise. */
export function verifyCompactJws(jws: string, publicKey: KeyObject): { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined {
  const parts = jws.split('.');
  if (parts.length !== 3) return undefined;
  const [header, payload, signature] = parts as [string, string, string];
  try {
    const parsedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (parsedHeader.alg !== 'EdDSA') return undefined;
    if (!verify(null, Buffer.from(`${header}.${payload}`, 'ascii'), publicKey, Buffer.from(signature, 'base64url'))) return undefined;
    return { header: parsedHeader, payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown> };
  } catch {
    return undefined;
  }
}
