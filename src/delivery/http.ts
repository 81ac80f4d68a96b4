import { DeliveryError } from './provider.js';

export interface ProviderResponse {
  status: number;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/** HTTP statuses worth retrying or failing over on: timeouts, rate limits and server errors (RFC 9110 §15). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : 'network error');
}

/**
 * One provider HTTP call with built-in fetch, bounded by `timeoutMs`. Network
 * errors and timeouts become transient `DeliveryError`s naming the provider; the answer itself (any status)
 * is returned for the provider to judge, since each documents its own error bodies.
 */
export async function providerFetch(
  provider: string,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  options: { timeoutMs: number },
): Promise<ProviderResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal: timeout, redirect: 'error' });
  } catch (error) {
    if (timeout.aborted) throw new DeliveryError(`${provider}: no answer within ${options.timeoutMs / 1000} s`, true);
    throw new DeliveryError(`${provider}: request failed (${describeNetworkError(error)})`, true);
  }
  let text: string;
  try {
    const buffer = Buffer.from(await response.arrayBuffer());
    text = buffer.subarray(0, MAX_RESPONSE_BYTES).toString('utf8');
  } catch {
    if (timeout.aborted) throw new DeliveryError(`${provider}: no complete answer within ${options.timeoutMs / 1000} s`, true);
    throw new DeliveryError(`${provider}: the answer was cut off (HTTP ${response.status})`, true);
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** Trims a provider's error text for a failure reason: one line, at most 200 characters. */
export function shortReason(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? line.slice(0, 197) + '...' : line;
}

export function basicAuth(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/** Joins a configured base URL and a path without doubling or losing the slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}
