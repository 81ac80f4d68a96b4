/**
 * Server CPU per request through the whole HTTP application but without sockets: a real otpd (every
 * hook, schema, log line and metric as shipped, on a fresh SQLite file or Redis) answers
 * `fastify.inject` requests, 50 at a time, and a bare Fastify echo answers the same way in the same
 * process, so the difference is what otpd's HTTP layer and services add: in the process's CPU (every
 * thread), and in its event-loop thread's alone (what bounds one process's throughput). Quieter than
 * `npm run bench` on a shared machine: no load generator competes for the cores, and no kernel network
 * stack is billed.
 * `node --import tsx bench/http-micro.ts [check-wrong|check-right|create|all] [N] [sqlite|redis] [--cpu-prof] [--alloc] [--scattered]`:
 * `--cpu-prof` profiles only the measured requests (not the set-up) into bench/results/profiles/http-micro/.
 * `--alloc` samples every allocation of the measured requests, garbage included (V8's sampling heap
 * profiler, one sample per 4 KiB on average), and prints the bytes allocated per request and where: unlike
 * CPU time it does not move with the machine's speed, so it compares two commits on a noisy machine
 * (`ALLOC_TOP=N` lists N functions instead of 15). Its CPU numbers include the sampler's own cost.
 * `--scattered` sends to numbers spread over the whole range instead of counting up, as real traffic does:
 * every per-destination B-tree (the pending index, the counters, the cooldowns) then takes a page of its own
 * per create instead of appending.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { shortUrl } from './lib/cpuprofile.js';
import { cpuSince, cpuSnapshot } from './lib/processes.js';
import { deleteRedisPrefix, Destinations, inBatches, REDIS_URL } from './lib/otpd.js';

const args = process.argv.slice(2);
const flags = new Set(args.filter((arg) => arg.startsWith('--')));
const profile = flags.has('--cpu-prof');
const alloc = flags.has('--alloc');
const scattered = flags.has('--scattered');
const [what = 'all', countText = '20000', storeKind = 'sqlite'] = args.filter((arg) => !arg.startsWith('--'));
const count = Number(countText);
const usage = (problem: string): never => {
  process.stderr.write(`${problem}\nusage: node --import tsx bench/http-micro.ts [create|check-wrong|check-right|all] [N: 100–1000000] [sqlite|redis] [--cpu-prof] [--alloc] [--scattered]\n`);
  process.exit(2);
};
for (const flag of flags) if (flag !== '--cpu-prof' && flag !== '--alloc' && flag !== '--scattered') usage(`unknown option ${flag}`);
if (profile && alloc) usage('--cpu-prof and --alloc measure one at a time: the heap sampler would be billed to the CPU profile');
const allocTop = Number(process.env.ALLOC_TOP ?? 15);
if (!Number.isInteger(allocTop) || allocTop < 0 || allocTop > 1000) usage('ALLOC_TOP must be an integer from 0 to 1000');
if (!['create', 'check-wrong', 'check-right', 'all'].includes(what)) usage(`unknown use case "${what}"`);
if (!Number.isInteger(count) || count < 100 || count > 1_000_000) usage('N must be an integer from 100 to 1,000,000');
if (storeKind !== 'sqlite' && storeKind !== 'redis') usage(`unknown store "${storeKind}"`);
/** Requests sent together, like the requests of one event-loop turn. */
const BATCH = 50;
const dir = mkdtempSync(join(tmpdir(), 'otpd-http-micro-'));
const env: NodeJS.ProcessEnv = { OTPD_SECRET: randomBytes(32).toString('base64url'), OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_HOST: '127.0.0.1', OTPD_PORT: '0' };
if (storeKind === 'redis') Object.assign(env, { OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: `otpd-micro-${randomBytes(4).toString('hex')}:` });
const server = await startServer(loadConfig(env), { print: null, logStream: createWriteStream('/dev/null') });
const { services } = server;
const created = await services.apps.create('micro', { deliveryProvider: 'noop' });
const headers = { authorization: `Bearer ${created.apiKey}`, 'content-type': 'application/json' };
const destinations = new Destinations('+1555', scattered);

const echo = Fastify();
echo.post('/echo', async (request) => request.body);
await echo.ready();

async function settle(): Promise<void> {
  await services.drain();
  await services.audit.flush();
}

const profiles = join(import.meta.dirname, 'results', 'profiles', 'http-micro');
let session: Session | undefined;
if (profile) {
  mkdirSync(profiles, { recursive: true });
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
}
let heapSession: Session | undefined;
if (alloc) {
  heapSession = new Session();
  heapSession.connect();
  await heapSession.post('HeapProfiler.enable');
}
/** What `--alloc` found per measured use case, printed after its CPU line. */
const allocations = new Map<string, { bytesPerRequest: number; sites: AllocationSite[] }>();

/** CPU per request: the process's (every thread), and its event-loop thread's alone (without the threads' share: signatures, GC helpers). */
interface Cost {
  micros: number;
  loopMicros: number;
}

/** CPU µs per request of `n` requests made by `one`, checking each answer's status. */
async function measure(app: FastifyInstance, n: number, status: number, one: (i: number) => InjectOptions, name = 'echo'): Promise<Cost> {
  if (session) await session.post('Profiler.start');
  // Collected objects are kept in the sample: a request's garbage is what it allocated, and what GC costs.
  if (heapSession) await heapSession.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  const before = process.cpuUsage();
  const loopBefore = cpuSnapshot(process.pid, true);
  await inBatches(n, async (i) => {
    const response = await app.inject(one(i));
    if (response.statusCode !== status) throw new Error(`expected ${status}, got ${response.statusCode}: ${response.body}`);
  }, BATCH);
  await settle();
  const used = process.cpuUsage(before);
  const loopSeconds = cpuSince(process.pid, loopBefore, true);
  if (session) {
    const { profile: taken } = await session.post('Profiler.stop');
    writeFileSync(join(profiles, `${name}.cpuprofile`), JSON.stringify(taken));
  }
  if (heapSession) {
    const { profile: sampled } = await heapSession.post('HeapProfiler.stopSampling');
    allocations.set(name, allocationSites(sampled.head as unknown as HeapNode, n));
  }
  return { micros: (used.user + used.system) / n, loopMicros: (loopSeconds * 1e6) / n };
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}
interface AllocationSite {
  where: string;
  bytesPerRequest: number;
}

/** Bytes allocated per request by the sampled tree, in all and per function (biggest first). */
function allocationSites(head: HeapNode, requests: number): { bytesPerRequest: number; sites: AllocationSite[] } {
  const bySite = new Map<string, number>();
  let total = 0;
  const stack = [head];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${functionName || '(anonymous)'}  ${shortUrl(url) || '(native)'}:${lineNumber + 1}`;
    bySite.set(where, (bySite.get(where) ?? 0) + node.selfSize);
    total += node.selfSize;
    stack.push(...node.children);
  }
  const sites = [...bySite].sort((a, b) => b[1] - a[1]).map(([where, bytes]) => ({ where, bytesPerRequest: bytes / requests }));
  return { bytesPerRequest: total / requests, sites };
}

function report(name: string, otpdCost: Cost, echoCost: Cost, profileName = name): void {
  const column = (micros: number, width: number) => micros.toFixed(1).padStart(width);
  console.log(`${name.padEnd(12)} ${column(otpdCost.micros, 7)} µs CPU/request   echo ${column(echoCost.micros, 5)} µs   otpd adds ${column(otpdCost.micros - echoCost.micros, 6)} µs`);
  console.log(`${'  event loop'.padEnd(12)} ${column(otpdCost.loopMicros, 7)} µs            echo ${column(echoCost.loopMicros, 5)} µs   otpd adds ${column(otpdCost.loopMicros - echoCost.loopMicros, 6)} µs`);
  const otpd = allocations.get(profileName);
  const echoAllocated = allocations.get('echo');
  if (!otpd || !echoAllocated) return;
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log(`${''.padEnd(12)} ${kib(otpd.bytesPerRequest).padStart(10)} allocated/request   echo ${kib(echoAllocated.bytesPerRequest)}   otpd adds ${kib(otpd.bytesPerRequest - echoAllocated.bytesPerRequest)}; the most, per request:`);
  for (const site of otpd.sites.slice(0, allocTop)) console.log(`${''.padEnd(14)}${site.bytesPerRequest.toFixed(0).padStart(7)} B  ${site.where}`);
}

const echoRequest = () => ({ method: 'POST' as const, url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"to":"+15550000000","code":"123456"}' });
const createRequest = () => ({ method: 'POST' as const, url: '/v1/verifications', headers, payload: JSON.stringify({ to: destinations.take(), channel: 'sms' }) });

// Warm-up: JIT, the database's first pages, the app and key caches.
await inBatches(2000, () => echo.inject(echoRequest()), BATCH);
await inBatches(2000, () => server.app.inject(createRequest()), BATCH);
await settle();

const echoCost = async (): Promise<Cost> => measure(echo, count, 200, echoRequest);
if (what === 'create' || what === 'all') {
  const otpd = await measure(server.app, count, 201, createRequest, 'create');
  report('create', otpd, await echoCost());
}
if (what === 'check-wrong' || what === 'check-right' || what === 'all') {
  const context = { keyId: 'micro-setup' };
  const pool = await inBatches(count, () => services.verifications.createRevealingCode(created.app, { to: destinations.take(), maxAttempts: 20 }, context), BATCH);
  await settle();
  const check = (i: number, right: boolean) => {
    const { verification, code } = pool[i]!;
    const sent = right ? code : code === '000000' ? '111111' : '000000';
    return { method: 'POST' as const, url: `/v1/verifications/${verification.id}/check`, headers, payload: JSON.stringify({ code: sent }) };
  };
  if (what !== 'check-right') report('check wrong', await measure(server.app, count, 200, (i) => check(i, false), 'check-wrong'), await echoCost(), 'check-wrong');
  if (what !== 'check-wrong') report('check right', await measure(server.app, count, 200, (i) => check(i, true), 'check-right'), await echoCost(), 'check-right');
}

await echo.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
// The Redis may be shared: remove this run's keys, and only those.
if (env.OTPD_REDIS_PREFIX !== undefined) await deleteRedisPrefix(env.OTPD_REDIS_PREFIX);
