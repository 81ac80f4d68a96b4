import { createHmac } from 'node:crypto';

/**
 * An independent HOTP/TOTP implementation for tests, sharing no code with otpd or the otpauth package:
 * RFC 4648 Base32 decoding, then RFC 4226 §5.3 written out with node:crypto — 8-byte big-endian counter
 * (BigInt, so every bit of it is exercised), HMAC, dynamic truncation, modulo 10^digits.
 */
export type ReferenceAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export function referenceHotp(key: Buffer, counter: bigint | number, algorithm: ReferenceAlgorithm = 'SHA1', digits = 6): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const digest = createHmac(algorithm.toLowerCase(), key).update(message).digest();
  const offset = digest[digest.length - 1]! & 0x0f;
  const binary = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

export function referenceBase32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of text.replace(/=+$/, '')) {
    const index = alphabet.indexOf(char);
    if (index === -1) throw new Error(`not Base32: ${char}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The TOTP code of a Base32 secret at `timeMs`, or at a step offset from it. */
export function referenceTotp(base32Secret: string, timeMs: number, options: { algorithm?: ReferenceAlgorithm; digits?: number; period?: number; stepOffset?: number } = {}): string {
  const period = options.period ?? 30;
  const step = Math.floor(timeMs / 1000 / period) + (options.stepOffset ?? 0);
  return referenceHotp(referenceBase32Decode(base32Secret), step, options.algorithm ?? 'SHA1', options.digits ?? 6);
}
