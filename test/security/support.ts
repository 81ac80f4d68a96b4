import { setTimeout as delay } from 'node:timers/promises';
import type { TestServer } from '../helper.js';

/** Creates an app with these settings on a test server; returns its API key. */
export async function appWith(server: TestServer, name: string, settings: Record<string, unknown>): Promise<string> {
  const { apiKey } = await server.server.services.apps.create(name, settings);
  return apiKey;
}

let counter = 0;
/** A fresh valid US number per call (area code 201, the fictional 555-01xx range), distinct per process. */
export function usNumber(): string {
  counter++;
  return `+1201555${String((process.pid * 7 + counter) % 10_000).padStart(4, '0')}`;
}

/** Waits (bounded) until the outbox holds `count` messages to `to`, then a little longer to see that no more arrive. */
export async function messagesTo(server: TestServer, to: string, count: number): Promise<number> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && server.messages().filter((m) => m.to === to).length < count) await delay(10);
  await delay(100);
  return server.messages().filter((m) => m.to === to).length;
}

export const wrongCode = (code: string) => (code[0] === '9' ? '0' : '9') + code.slice(1);

/** Any stack-trace-looking text (`    at fn (file:line)`, or a file path with line and column). */
export const STACK_TRACE = /\n\s+at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)|(?:\/|\\)[\w.-]+\.(?:ts|js|mjs):\d+:\d+/;
