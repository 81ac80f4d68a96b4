import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

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
 * When to sign off the event loop. An Ed25519 signature is ~40–60 µs of CPU, more than a whole bare HTTP
 * request, and a one-process server answers every request on its one event-loop thread. So the signatures
 * asked for in one event-loop turn are decided together at its end (`setImmediate`): a lone one is made
 * inline, where the trip to a thread and back would only add latency (~70 µs) and CPU (thread wake-ups);
 * when there are several, or while earlier ones are still on the pool, each goes to libuv's thread pool
 * (node's `sign` with a callback), and a spare core makes them while the loop serves other requests: under
 * load ~7 µs of the loop's time instead of ~46 each (docs/performance.md).
 */
interface SignRequest {
  data: Buffer;
  privateKey: KeyObject;
  resolve(signature: Buffer): void;
  reject(error: unknown): void;
}
let pooledInFlight = 0;
let asked: SignRequest[] = [];

function signOnPool(request: SignRequest): void {
  pooledInFlight += 1;
  try {
    // Ed25519 hashes internally: node's sign takes no digest algorithm for it (null).
    sign(null, request.data, request.privateKey, (error, signature) => {
      pooledInFlight -= 1;
      if (error) request.reject(error);
      else request.resolve(signature);
    });
  } catch (error) {
    // Refused before it reached the pool (a public key given as the private one): this request fails alone.
    pooledInFlight -= 1;
    request.reject(error);
  }
}

function signAsked(): void {
  const turn = asked;
  asked = [];
  if (turn.length === 1 && pooledInFlight === 0) {
    const [only] = turn as [SignRequest];
    try {
      only.resolve(sign(null, only.data, only.privateKey));
    } catch (error) {
      only.reject(error);
    }
    return;
  }
  for (const request of turn) signOnPool(request);
}

function ed25519Sign(data: Buffer, privateKey: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const request = { data, privateKey, resolve, reject };
    if (pooledInFlight > 0) return signOnPool(request);
    if (asked.length === 0) setImmediate(signAsked);
    asked.push(request);
  });
}

/** `header.payload.signature`, each base64url; `alg: EdDSA` and `kid` are set in the protected header. */
export async function signCompactJws(payload: object, privateKey: KeyObject, kid: string, type = 'JWT'): Promise<string> {
  const signingInput = `${headerSegment(kid, type)}.${segment(payload)}`;
  const signature = await ed25519Sign(Buffer.from(signingInput, 'ascii'), privateKey);
  return `${signingInput}.${signature.toString('base64url')}`;
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
