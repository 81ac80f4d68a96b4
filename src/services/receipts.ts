import { hash } from 'node:crypto';
import { ed25519FromSeed, publicJwk, signCompactJws, type Ed25519KeyPair } from '../core/jws.js';
import type { Keyring } from '../core/keyring.js';
import type { VerificationRecord } from '../core/verification.js';

/** The JWK Set served at `/.well-known/jwks.json` (RFC 7517 §5). */
export interface Jwks {
  keys: ReturnType<typeof publicJwk>[];
}

/** What a receipt states (docs/audit-and-events.md "Signed approval receipts"). */
export interface ReceiptClaims {
  /** The verification id. */
  sub: string;
  /** The app's id. */
  app: string;
  /** base64url(SHA-256(to)) of the normalised destination (E.164, or the address with a lower-cased domain). */
  to_hash: string;
  channel: string;
  status: 'approved';
  /** Seconds since the epoch (RFC 7519 §4.1.6). */
  iat: number;
}

/** base64url SHA-256 of a normalised destination, as receipts state it. */
export function destinationDigest(to: string): string {
  return hash('sha256', to, 'base64url');
}

/**
 * Signed approval receipts: an approved check answers a compact JWS (EdDSA, Ed25519) a caller can keep and
 * verify offline against otpd's public keys, proving which verification was approved, for which destination
 * (hashed), on which channel and when. Each keyring key derives its own Ed25519 pair from its `receipt`
 * subkey, named by the keyring's key id: during a rotation the JWKS lists the current and the previous key,
 * so receipts signed before the switch still verify.
 */
export class ReceiptsService {
  private readonly pairs = new Map<string, Ed25519KeyPair>();

  constructor(
    private readonly keyring: Keyring,
    private readonly clock: () => number,
  ) {}

  private pair(kid: string): Ed25519KeyPair {
    let pair = this.pairs.get(kid);
    if (!pair) {
      pair = ed25519FromSeed(this.keyring.subkey('receipt', kid));
      this.pairs.set(kid, pair);
    }
    return pair;
  }

  /** The receipt of an approved verification (signed off the event loop under load: src/core/jws.ts). */
  issue(verification: VerificationRecord): Promise<string> {
    const kid = this.keyring.currentKid;
    const claims: ReceiptClaims = {
      sub: verification.id,
      app: verification.appId,
      to_hash: destinationDigest(verification.to),
      channel: verification.channel,
      status: 'approved',
      iat: Math.floor(this.clock() / 1000),
    };
    return signCompactJws(claims, this.pair(kid).privateKey, kid);
  }

  jwks(): Jwks {
    return { keys: this.keyring.kids.map((kid) => publicJwk(this.pair(kid).publicKey, kid)) };
  }
}
