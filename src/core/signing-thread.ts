import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** One Ed25519 signature to make: the signing input (ASCII, a JWS's `header.payload`) and the key. */
export interface SignRequest {
  input: string;
  privateKey: KeyObject;
  /** With the signature, base64url. */
  resolve(signature: string): void;
  reject(error: unknown): void;
}

/** The thread is a plain JavaScript file (why: its header), next to this one in src/ and in dist/. */
const WORKER_URL = new URL('./signing-worker.js', import.meta.url);

/**
 * Requests per message. The thread answers a message once all its signatures are made, so a turn's
 * requests go in several: the first of a turn of 50 are answered after 16 signatures, not 50 (~0.5 ms
 * instead of ~1.5 on the benchmark machine), for one message more each way per 16.
 */
export const REQUESTS_PER_MESSAGE = 16;

type Answer = string | { error: string };

/**
 * Ed25519 signatures on a worker thread of their own, each event-loop turn's requests in a few messages.
 * libuv's thread pool (node's `sign` with a callback) costs the event loop ~6 µs per signature, for the
 * job's setup and its completion callback; one message carrying many costs ~2–3 µs per signature all
 * told, and its signatures come back as text, already encoded (`bench/signing-micro.ts`: 7.0 against 2.0
 * µs of the loop's CPU, 37 against 34 µs of the process's). One thread is enough: at ~20–35 µs a signature
 * it makes 30,000–50,000 a second, more than one event loop serves right-code checks. The inputs travel as
 * strings, not Buffers: structured cloning copies a Buffer's whole backing store, for a small one the
 * 8 KiB pool it was cut from.
 *
 * It starts on the first `take` (a thread costs tens of milliseconds of CPU to start, which CLI commands
 * and most tests never need), and takes nothing until it has said it is ready: until then, and for good if
 * it fails or exits, `take` returns false and the caller signs on libuv's pool. Requests it holds when it
 * fails go back to `fallback`, so none is lost; signing twice is harmless (Ed25519 is deterministic). It
 * is referenced only while it holds requests, so it never keeps a process alive.
 */
export class SigningThread {
  state: 'idle' | 'starting' | 'running' | 'failed' = 'idle';
  /** Why the thread is gone, when it failed. */
  failure: unknown;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  /** Numbers for the keys sent to this thread: a key is cloned into it once, then named by its number. */
  private readonly keyNumbers = new WeakMap<KeyObject, number>();
  private nextKeyNumber = 1;
  private readonly waiting = new Map<number, SignRequest[]>();
  private nextMessage = 1;
  private held = 0;

  constructor(private readonly fallback: (requests: SignRequest[]) => void) {}

  /** Requests sent to the thread and not yet answered. */
  get inFlight(): number {
    return this.held;
  }

  /**
   * Resolves once the thread is running or has failed (tests, diagnostics); starts it if idle. The thread
   * keeps the process up while it is awaited.
   */
  async started(): Promise<void> {
    if (this.state === 'idle') this.start();
    if (this.state !== 'starting') return;
    this.worker?.ref();
    await this.ready;
    if (this.held === 0) this.worker?.unref();
  }

  /** Sends `requests` to the thread and returns true, or returns false if it is not running (see above). */
  take(requests: SignRequest[]): boolean {
    if (this.state === 'idle') this.start();
    if (this.state !== 'running' || !this.worker) return false;
    if (this.held === 0) this.worker.ref();
    for (let start = 0; start < requests.length; start += REQUESTS_PER_MESSAGE) {
      this.post(this.worker, requests.slice(start, start + REQUESTS_PER_MESSAGE));
    }
    return true;
  }

  /** Ends the thread; what it held goes to `fallback` (tests; a process's exit ends it anyway). */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    await worker.terminate();
  }

  private post(worker: Worker, requests: SignRequest[]): void {
    const keys: [number, KeyObject][] = [];
    const items = requests.map((request): [number, string] => {
      let number = this.keyNumbers.get(request.privateKey);
      if (number === undefined) {
        number = this.nextKeyNumber++;
        this.keyNumbers.set(request.privateKey, number);
        keys.push([number, request.privateKey]);
      }
      return [number, request.input];
    });
    const id = this.nextMessage++;
    this.waiting.set(id, requests);
    this.held += requests.length;
    worker.postMessage({ id, keys, items });
  }

  private start(): void {
    let worker: Worker;
    try {
      // No execArgv: the parent's (`--import tsx`, a profiler) would only slow the thread's start.
      worker = new Worker(WORKER_URL, { execArgv: [] });
    } catch (error) {
      this.fail(error);
      return;
    }
    this.state = 'starting';
    this.worker = worker;
    this.ready = new Promise((done) => {
      worker.on('message', (message: 'ready' | { id: number; results: Answer[] }) => {
        if (message === 'ready') {
          if (this.state === 'starting') this.state = 'running';
          done();
        } else this.answer(message.id, message.results);
      });
      worker.once('error', (error) => {
        this.fail(error);
        done();
      });
      worker.once('exit', (code) => {
        this.fail(new Error(`the signing thread exited with code ${code}`));
        done();
      });
    });
    // After the listeners: the first 'message' listener refs the thread's port again.
    worker.unref();
  }

  private answer(id: number, results: Answer[]): void {
    const requests = this.waiting.get(id);
    if (!requests) return;
    this.waiting.delete(id);
    this.held -= requests.length;
    if (this.held === 0) this.worker?.unref();
    requests.forEach((request, i) => {
      const result = results[i];
      if (typeof result === 'string') request.resolve(result);
      else request.reject(new Error(result?.error ?? 'the signing thread gave no answer'));
    });
  }

  private fail(error: unknown): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.failure = error;
    this.worker = undefined;
    const orphans = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.held = 0;
    if (orphans.length > 0) this.fallback(orphans);
  }
}
