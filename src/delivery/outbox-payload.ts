import type { Channel } from '../core/destination.js';
import type { Keyring } from '../core/keyring.js';

/** What a waiting message holds; encrypted as a whole, so the code never lies in the store in clear. */
export interface OutboxPayload {
  v: 1;
  to: string;
  channel: Channel;
  code: string;
  locale: string | null;
  link: string | null;
}

/** AES-256-GCM under the `outbox` subkey, bound to the message id (decisions 3). */
export function sealPayload(keyring: Keyring, messageId: string, payload: OutboxPayload): string {
  return keyring.encrypt('outbox', JSON.stringify(payload), messageId);
}

/** Fails closed (SECRET_MISMATCH) on a wrong key or a ciphertext moved to another message. */
export function openPayload(keyring: Keyring, messageId: string, blob: string): OutboxPayload {
  return JSON.parse(keyring.decrypt('outbox', blob, messageId)) as OutboxPayload;
}
