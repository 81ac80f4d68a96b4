/**
 * Server CPU per request through the whole HTTP application but without sockets: a real otpd (every
 * hook, schema, log line and metric as shipped, on a fresh SQLite file or Redis) answers
 * `fastify.inject` requests, 50 at a time, and a bare Fastify echo answers the same way in the same
 * process, so the difference is what otpd's HTTP layer and services add. Quieter than `npm run bench` on
 * a shared machine: no load generator competes for the cores, and no kernel network stack is billed.
 * `node --import tsx bench/http-micro.ts [check-wrong|check-right|create|all] [N] [sqlite|redis] [--cpu-prof] [--scattered]`:
 * `--cpu-prof` profiles only the measured requests (not the set-up) into bench/results/profiles/http-micro/.
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
import { deleteRedisPrefix, Destinations, inBatches, REDIS_URL } from './lib/otpd.js';

const args = process.argv.slice(2);
const flags = new Set(args.filter((arg) => arg.startsWith('--')));
const profile = flags.has('--cpu-prof');
const scattered = flags.has('--scattered');
const [what = 'all', countText = '20000', storeKind = 'sqlite'] = args.filter((arg) => !arg.startsWith('--'));
const count = Number(countText);
const usage = (problem: string): never => {
  process.stderr.write(`${problem}\nusage: node --import tsx bench/http-micro.ts [create|check-wrong|check-right|all] [N: 100–1000000] [sqlite|redis] [--cpu-prof] [--scattered]\n`);
  process.exit(2);
};
for (const flag of flags) if (flag !== '--cpu-prof' && flag !== '--scattered') usage(`unknown option ${flag}`);
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

/** CPU µs per request of `n` requests made by `one`, checking each answer's status. */
async function measure(app: FastifyInstance, n: number, status: number, one: (i: number) => InjectOptions, name = 'echo'): Promise<number> {
  if (session) await session.post('Profiler.start');
  const before = process.cpuUsage();
  await inBatches(n, async (i) => {
    const response = await app.inject(one(i));
    if (response.statusCode !== status) throw new Error(`expected ${status}, got ${response.statusCode}: ${response.body}`);
  }, BATCH);
  await settle();
  const used = process.cpuUsage(before);
  if (session) {
    const { profile: taken } = await session.post('Profiler.stop');
    writeFileSync(join(profiles, `${name}.cpuprofile`), JSON.stringify(taken));
  }
  return (used.user + used.system) / n;
}

function report(name: string, micros: number, echoMicros: number): void {
  console.log(`${name.padEnd(12)} ${micros.toFixed(1).padStart(7)} µs CPU/request   echo ${echoMicros.toFixed(1).padStart(5)} µs   otpd adds ${(micros - echoMicros).toFixed(1).padStart(6)} µs`);
}

const echoRequest = () => ({ method: 'POST' as const, url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"to":"+15550000000","code":"123456"}' });
const createRequest = () => ({ method: 'POST' as const, url: '/v1/verifications', headers, payload: JSON.stringify({ to: destinations.take(), channel: 'sms' }) });

// Warm-up: JIT, the database's first pages, the app and key caches.
await inBatches(2000, () => echo.inject(echoRequest()), BATCH);
await inBatches(2000, () => server.app.inject(createRequest()), BATCH);
await settle();

const echoMicros = async (): Promise<number> => measure(echo, count, 200, echoRequest);
if (what === 'create' || what === 'all') {
  const otpd = await measure(server.app, count, 201, createRequest, 'create');
  report('create', otpd, await echoMicros());
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
  if (what !== 'check-right') report('check wrong', await measure(server.app, count, 200, (i) => check(i, false), 'check-wrong'), await echoMicros());
  if (what !== 'check-wrong') report('check right', await measure(server.app, count, 200, (i) => check(i, true), 'check-right'), await echoMicros());
}

await echo.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
// The Redis may be shared: remove this run's keys, and only those.
if (env.OTPD_REDIS_PREFIX !== undefined) await deleteRedisPrefix(env.OTPD_REDIS_PREFIX);
