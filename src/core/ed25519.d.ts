import type { KeyObject } from 'node:crypto';

/** Which implementation signs in this process. */
export declare const ed25519Implementation: 'libsodium' | 'node:crypto';

/** The Ed25519 signature (64 bytes) of `message` under `privateKey` (src/core/ed25519.js). */
export declare function signEd25519(message: Buffer, privateKey: KeyObject): Buffer;
