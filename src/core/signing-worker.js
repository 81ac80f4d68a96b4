// @ts-check
/**
 * The signing thread (src/core/signing-thread.ts starts it and says why): Ed25519 signatures over the
 * signing inputs it is sent, a message of them at a time, answered as base64url text.
 *
 * Plain JavaScript for the reason src/store/sqlite/checkpoint-worker.js gives: a worker thread gets no
 * TypeScript loader under tsx, and the built server has none, so this file runs as it is from src/ and
 * from dist/ (scripts/copy-assets.mjs copies it).
 */
import { parentPort } from 'node:worker_threads';
import { signEd25519 } from './ed25519.js';

const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/** The private keys the main thread has sent, by the number it gave each. @type {Map<number, import('node:crypto').KeyObject>} */
const keys = new Map();

/**
 * One message: keys not sent before, then `[key number, signing input]` pairs. Each answer is the
 * signature, or `{ error }` for an input that could not be signed (a key that cannot sign), which fails
 * that request alone.
 *
 * @param {{ id: number, keys: [number, import('node:crypto').KeyObject][], items: [number, string][] }} message
 */
function signAll({ id, keys: sent, items }) {
  for (const [number, key] of sent) keys.set(number, key);
  const results = items.map(([number, input]) => {
    const key = keys.get(number);
    if (!key) return { error: `the signing thread was not sent key ${number}` };
    try {
      return signEd25519(Buffer.from(input, 'ascii'), key).toString('base64url');
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  });
  port.postMessage({ id, results });
}

port.on('message', signAll);
port.postMessage('ready');
