import { createCipheriv, createDecipheriv, createHash, createHmac, hash, hkdfSync } from 'node:crypto';
import { OtpdError } from '../errors.js';
import { pooledRandomBytes } from './random.js';

/**
 * Every use of the server secret gets its own HKDF subkey (RFC 5869), so a key recovered from one purpose
 * says nothing about another (decisions 5).
 */
export type KeyPurpose =
  | 'code-hash'
  | 'factor-secret'
  | 'outbox'
  | 'time-window'
  | 'partner-token'
  | 'receipt'
  | 'routing'
  | 'dialect-secret'
  | 'page-csrf'
  | 'audit'
  | 'webhook-secret';

interface KeyVersion {
  kid: string;
  secret: Buffer;
  subkeys: Map<KeyPurpose, Buffer>;
}

function keyVersion(secret: string): KeyVersion {
  const material = Buffer.from(secret, 'utf8');
  const kid = createHash('sha256').update('otpd-kid:').update(material).digest('hex').slice(0, 8);
  return { kid, secret: material, subkeys: new Map() };
}

/**
 * The keyring: the current secret (`OTPD_SECRET`) and, during a rotation, the previous one
 * (`OTPD_SECRET_PREVIOUS`). New hashes and ciphertexts always use the current key; each stores its key id
 * so values written under the previous key stay readable until they expire or are re-wrapped.
 */
export class Keyring {
  private readonly current: KeyVersion;
  private readonly byKid = new Map<string, KeyVersion>();

  constructor(currentSecret: string, previousSecret?: string) {
    this.current = keyVersion(currentSecret);
    this.byKid.set(this.current.kid, this.current);
    if (previousSecret) {
      const previous = keyVersion(previousSecret);
      if (!this.byKid.has(previous.kid)) this.byKid.set(previous.kid, previous);
    }
  }

  get currentKid(): string {
    return this.current.kid;
  }

  /** All key ids, current first. */
  get kids(): string[] {
    return [...this.byKid.keys()];
  }

  hasKid(kid: string): boolean {
    return this.byKid.has(kid);
  }

  subkey(purpose: KeyPurpose, kid = this.current.kid): Buffer {
    const version = this.byKid.get(kid);
    if (!version) {
      throw new OtpdError('SECRET_MISMATCH', `no configured server secret has key id ${kid}; set OTPD_SECRET (or OTPD_SECRET_PREVIOUS) to the secret that wrote it`);
    }
    let key = version.subkeys.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', version.secret, 'otpd/v1', purpose, 32));
      version.subkeys.set(purpose, key);
    }
    return key;
  }

  /** HMAC-SHA256 under a purpose's subkey, base64url. */
  mac(purpose: KeyPurpose, data: string | Buffer, kid = this.current.kid): string {
    return createHmac('sha256', this.subkey(purpose, kid)).update(data).digest('base64url');
  }

  macBytes(purpose: KeyPurpose, data: string | Buffer, kid = this.current.kid): Buffer {
    return createHmac('sha256', this.subkey(purpose, kid)).update(data).digest();
  }

  /**
   * AES-256-GCM with a fresh 96-bit IV; the output `kid.iv.tag.ciphertext` (base64url parts) names its key.
   * `context` is bound as additional authenticated data, so a ciphertext moved to another row fails.
   */
  encrypt(purpose: KeyPurpose, plaintext: string, context = ''): string {
    // A fresh IV per message from the pooled CSPRNG (never reused: each pooled byte is handed out once).
    const iv = pooledRandomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.subkey(purpose), iv);
    cipher.setAAD(Buffer.from(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [this.current.kid, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /** Fails closed: an unknown key id or a wrong key is a SECRET_MISMATCH error, never a wrong plaintext. */
  decrypt(purpose: KeyPurpose, blob: string, context = ''): string {
    const [kid, iv, tag, ciphertext] = blob.split('.');
    if (!kid || !iv || !tag || ciphertext === undefined) throw new OtpdError('SECRET_MISMATCH', 'stored ciphertext is malformed');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.subkey(purpose, kid), Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (error) {
      if (error instanceof OtpdError) throw error;
      throw new OtpdError('SECRET_MISMATCH', `stored data under key id ${kid} does not decrypt with the configured server secret`, { cause: error });
    }
  }

  /** Key id a ciphertext was written under. */
  static kidOf(blob: string): string {
    return blob.slice(0, blob.indexOf('.'));
  }
}

/** API keys are stored as SHA-256 hashes, independent of the keyring, so a rotation locks no client out. */
export function hashApiKey(apiKey: string): string {
  // crypto.hash: one call, no Hash object; this runs for every authenticated request.
  return hash('sha256', apiKey, 'hex');
}

export function sha256Hex(data: string | Buffer): string {
  return hash('sha256', data, 'hex');
}
