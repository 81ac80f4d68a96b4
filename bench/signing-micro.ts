/**
 * What an Ed25519 receipt signature costs the event loop, four ways, with turns of 50 as a busy server
 * has them: inline on the loop through src/core/ed25519.js (libsodium where sodium-native loads, as otpd
 * signs a lone receipt: the baseline, the signature's own CPU) and through node:crypto (OpenSSL), on
 * libuv's thread pool (node's `sign` with a callback, one job per signature, otpd's fallback), and on the
 * signing thread (src/core/signing-thread.ts, 16 to a message, signing through src/core/ed25519.js).
 * Prints, per signature, the event-loop thread's CPU, the process's CPU (every thread) and the wall time,
 * each mode's runs alternating so the machine's drift falls on all four.
 * `node --import tsx bench/signing-micro.ts [N signatures per run: 1000–1000000] [rounds: 1–20]`
 */
import { randomBytes, sign } from 'node:crypto';
import { ed25519Implementation, signEd25519 } from '../src/core/ed25519.js';
import { ed25519FromSeed } from '../src/core/jws.js';
import { SigningThread, type SignRequest } from '../src/core/signing-thread.js';
import { cpuSince, cpuSnapshot } from './lib/processes.js';

const [countText = '20000', roundsText = '3'] = process.argv.slice(2);
const count = Number(countText);
const rounds = Number(roundsText);
const usage = (problem: string): never => {
  process.stderr.write(`${problem}\nusage: node --import tsx bench/signing-micro.ts [N: 1000–1000000] [rounds: 1–20]\n`);
  process.exit(2);
};
if (!Number.isInteger(count) || count < 1000 || count > 1_000_000) usage('N must be an integer from 1,000 to 1,000,000');
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) usage('rounds must be an integer from 1 to 20');

/** Signatures asked for in one event-loop turn. */
const TURN = 50;
const { privateKey } = ed25519FromSeed(randomBytes(32));
// A receipt's signing input is ~250 ASCII characters: its header and claims, base64url.
const inputs = Array.from({ length: count }, (_, i) => `eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.${Buffer.from(JSON.stringify({ sub: `ver_${i}`, app: 'app_bench', to_hash: randomBytes(32).toString('base64url'), channel: 'sms', status: 'approved', iat: 1_800_000_000 })).toString('base64url')}`);

const thread = new SigningThread(() => {
  throw new Error('the signing thread failed during the benchmark');
});

type Mode = (turn: string[]) => Promise<unknown>;
const modes: Record<string, Mode> = {
  inline: async (turn) => turn.map((input) => signEd25519(Buffer.from(input, 'ascii'), privateKey).toString('base64url')),
  'node:crypto inline': async (turn) => turn.map((input) => sign(null, Buffer.from(input, 'ascii'), privateKey).toString('base64url')),
  'thread pool': (turn) =>
    Promise.all(turn.map((input) => new Promise<string>((resolve, reject) => sign(null, Buffer.from(input, 'ascii'), privateKey, (error, signature) => (error ? reject(error) : resolve(signature.toString('base64url'))))))),
  'signing thread': (turn) => {
    const requests: SignRequest[] = [];
    const signed = Promise.all(turn.map((input) => new Promise<string>((resolve, reject) => requests.push({ input, privateKey, resolve, reject }))));
    if (!thread.take(requests)) throw new Error('the signing thread is not running');
    return signed;
  },
};

/** Per signature: event-loop CPU, process CPU and wall time, in µs. */
async function run(mode: Mode): Promise<[number, number, number]> {
  const loopBefore = cpuSnapshot(process.pid, true);
  const before = process.cpuUsage();
  const started = performance.now();
  for (let at = 0; at < count; at += TURN) {
    await mode(inputs.slice(at, at + TURN));
    // The next turn, as a server's next batch of requests would come.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const wall = (performance.now() - started) * 1000;
  const used = process.cpuUsage(before);
  return [(cpuSince(process.pid, loopBefore, true) * 1e6) / count, (used.user + used.system) / count, wall / count];
}

await thread.started();
for (const mode of Object.values(modes)) await run(mode); // warm-up: JIT, the pool's and the thread's first work
const results = new Map(Object.keys(modes).map((name) => [name, [] as [number, number, number][]]));
for (let round = 0; round < rounds; round++) for (const [name, mode] of Object.entries(modes)) results.get(name)!.push(await run(mode));

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const inlineLoop = median(results.get('inline')!.map(([loop]) => loop));
console.log(`${count} Ed25519 signatures per run, ${TURN} per event-loop turn, ${rounds} alternating rounds (median; µs per signature); otpd signs through ${ed25519Implementation}:`);
console.log(`${'mode'.padEnd(18)} ${'loop'.padStart(7)} ${'process'.padStart(8)} ${'wall'.padStart(7)}   loop × inline`);
for (const [name, runs] of results) {
  const [loop, cpu, wall] = [0, 1, 2].map((k) => median(runs.map((r) => r[k]!)));
  console.log(`${name.padEnd(18)} ${loop!.toFixed(1).padStart(7)} ${cpu!.toFixed(1).padStart(8)} ${wall!.toFixed(1).padStart(7)}   ${(loop! / inlineLoop).toFixed(2)}`);
}
await thread.stop();
