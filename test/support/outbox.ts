import type { TestServer } from '../helper.js';

/** Waits (bounded, 5 s) for the `nth` (1-based) dev-outbox message to `to` and returns its code: what the person would read. */
export async function codeSentTo(server: TestServer, to: string, nth = 1): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const found = server.messages().filter((message) => message.to === to);
    if (found.length >= nth) return found[nth - 1]!.code;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no message #${nth} to ${to} within 5 s`);
}
