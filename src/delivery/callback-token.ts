import type { Keyring } from '../core/keyring.js';

/**
 * The secret token in a provider's callback URL, for providers that sign nothing (decisions 8): configured
 * per provider (`callbackToken`), or derived from the server secret under the `receipt` purpose so it stays
 * the same across restarts and processes without being stored anywhere.
 */
export function deriveCallbackToken(keyring: Keyring, providerName: string): string {
  return keyring.mac('receipt', `callback-token:${providerName}`);
}

/** `url` with `token=…` added to its query. */
export function withToken(url: string, token: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** The callback path of a provider; the callbacks plugin serves it. */
export function callbackPath(providerName: string): string {
  return `/v1/providers/${encodeURIComponent(providerName)}/callbacks`;
}
