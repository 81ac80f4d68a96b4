/**
 * `npm run bench`: otpd's throughput against a bare Fastify echo (the ceiling) and a peer (better-auth's
 * phone-number OTP plugin), all on loopback, with autocannon at 100 connections for a fixed time each.
 * docs/performance.md explains the method and keeps the latest table.
 *
 *   npm run bench -- [--duration 5] [--warmup 1] [--connections 100] [--only LIST] [--no-save] [--cpu-prof]
 *
 * `--only` takes comma-separated parts of scenario ids (`echo`, `sqlite`, `redis-2w`, `peer`,
 * `check-right`, `native-create@redis`, …); a scenario runs when its id contains one of them.
 * `@peer-rounds` and `@redis-pairs` select the alternating rounds against the peer and of two workers
 * against one process, which decide the targets that compare two servers (alternate()).
 * otpd runs from dist/ (`otpd serve`, built first when src/ is newer), every feature on as shipped: audit
 * log, metrics, rate limits, the outbox, JSON request logs (to /dev/null). Writes the table as JSON to
 * bench/results/DATE-MACHINE.json, with otpd's store calls per request (from GET /metrics) for each otpd
 * row. `BENCH_SERVER_LOG=FILE` keeps the servers' log lines. `--cpu-prof` profiles each otpd row's measured
 * run in every server process (bench/lib/profile-window.mjs; profiles in bench/results/profiles/, not kept in
 * git) and prints its functions with the most self time.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, platform, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { selfTimes } from './lib/cpuprofile.js';
import { measure, type LoadSpec, type Measurement } from './lib/load.js';
import { OtpdUnderTest, REDIS_URL, totpNow, type Destinations, type OtpdTarget, type PooledCode, type PooledFactor } from './lib/otpd.js';
import { cpuSince, cpuSnapshot, freePort, processTree, startProcess, type ServerProcess } from './lib/processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Options {
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  only: string[];
  save: boolean;
  /** Profile each otpd row's measured run into bench/results/profiles/ and print its hot spots. */
  profile: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { durationSeconds: 5, warmupSeconds: 1, connections: 100, only: [], save: true, profile: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    const number = (min: number, max: number) => {
      const n = Number(value());
      if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${arg}: must be a number from ${min} to ${max}`);
      return n;
    };
    if (arg === '--duration') options.durationSeconds = number(1, 600);
    else if (arg === '--warmup') options.warmupSeconds = number(0, 60);
    else if (arg === '--connections') options.connections = number(1, 1000);
    else if (arg === '--only') options.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (arg === '--no-save') options.save = false;
    else if (arg === '--cpu-prof') options.profile = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('npm run bench -- [--duration S] [--warmup S] [--connections N] [--only id,part,...] [--no-save] [--cpu-prof]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  return options;
}

/** One line of the table. */
interface Row {
  id: string;
  scenario: string;
  /** What the row is compared with on the peer: its send, its verify, or nothing comparable. */
  peer: 'send' | 'verify' | null;
  measurement: Measurement;
  /** Anything that makes the row less than a clean measurement (a pool that ran out). */
  note?: string;
  /** otpd only: store calls per request during the measured run, by operation (from GET /metrics). */
  storeCalls?: Record<string, number>;
}

/** Where `--cpu-prof` leaves the profiles of the last run: `ROW-PID.cpuprofile`, one per row and server process. */
const PROFILES = join(ROOT, 'bench', 'results', 'profiles');
const options = parseArgs(process.argv.slice(2));
if (options.profile) {
  // The last run's profiles go; bench/http-micro.ts keeps its own in a folder here.
  mkdirSync(PROFILES, { recursive: true });
  for (const name of readdirSync(PROFILES)) if (name.endsWith('.cpuprofile')) rmSync(join(PROFILES, name));
}
const rows: Row[] = [];
/** A part matches the ids that contain it; a part ending in `$` only the id it names (`native-create@redis$`). */
const wanted = (id: string) => options.only.length === 0 || options.only.some((part) => (part.endsWith('$') ? id === part.slice(0, -1) : id.includes(part)));
const log = (line: string) => process.stderr.write(line + '\n');

/**
 * `processes`: how many server processes share the load. Each gets the warm-up one process gets (the
 * warm-up is as many times longer): two workers warmed for 1 s have seen half the requests each, and their
 * first measured seconds still ran colder code (measured: create 1.54× and 1.64× the CPU per request of one
 * process after 1 s of warm-up, 0.85× and 1.04× after 6 s).
 */
function load(url: string, spec: Omit<LoadSpec, 'url' | 'connections' | 'durationSeconds' | 'warmupSeconds'>, processes = 1): LoadSpec {
  return { url, connections: options.connections, durationSeconds: options.durationSeconds, warmupSeconds: options.warmupSeconds * processes, ...spec };
}

/** otpd's store calls so far by operation, summed over workers (`otpd_store_operation_duration_seconds_count`). */
async function storeCallCounts(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const counts = new Map<string, number>();
  for (const [, operation, count] of text.matchAll(/^otpd_store_operation_duration_seconds_count\{[^}]*operation="(\w+)"[^}]*\} (\d+)/gm)) {
    counts.set(operation!, (counts.get(operation!) ?? 0) + Number(count));
  }
  return counts;
}

async function record(id: string, scenario: string, peer: Row['peer'], server: ServerProcess, spec: LoadSpec, note?: () => string | undefined): Promise<void> {
  log(`  ${id} ...`);
  const { measurement, storeCalls } = await measureServer(id.includes('@'), server, spec, options.profile ? id : undefined);
  const text = note?.();
  rows.push({ id, scenario, peer, measurement, ...(text ? { note: text } : {}), ...(storeCalls ? { storeCalls } : {}) });
  log(`    ${summary(measurement, storeCalls)}${text ? ` (${text})` : ''}`);
}

function summary(measurement: Measurement, storeCalls?: Record<string, number>): string {
  const totalCalls = storeCalls && Object.values(storeCalls).reduce((a, b) => a + b, 0);
  return `${Math.round(measurement.rps)} req/s, p99 ${measurement.p99} ms, ${Math.round(measurement.cpuMicrosPerRequest)} µs CPU/req (${Math.round(measurement.loopCpuMicrosPerRequest)} on the event loop), errors ${measurement.errors}${totalCalls === undefined ? '' : `, ${totalCalls.toFixed(1)} store calls/req`}, ${measurement.involuntarySwitchesPerRequest.toFixed(2)} preemptions/req`;
}

/**
 * One measurement of `server`; for otpd (`otpdServer`) also the store calls each request caused.
 * `profileAs`: with `--cpu-prof`, the row whose measured window each otpd process profiles (started
 * under bench/lib/profile-window.mjs), printed and kept under that name.
 */
async function measureServer(otpdServer: boolean, server: ServerProcess, spec: LoadSpec, profileAs?: string): Promise<{ measurement: Measurement; storeCalls?: Record<string, number> }> {
  // For otpd, the store calls each request caused: the same work per request on one process and on two
  // workers shows that the workers do not wait on each other.
  let first = new Map<string, number>();
  const calls = new Map<string, number>();
  let profiled: number[] = [];
  const around = otpdServer
    ? {
        before: async () => {
          // What the warm-up queued is done before the measured run starts.
          await settle(server);
          first = await storeCallCounts(server.url);
          if (profileAs !== undefined) profiled = toggleProfiles(server.pid);
        },
        after: async () => {
          // The profile ends with the load: the sampler itself would keep the server from falling quiet.
          if (profileAs !== undefined) await collectProfiles(profiled, profileAs);
          // Counted once the answers are out and what they queued has run (the outbox, audit batches).
          await settle(server);
          for (const [operation, count] of await storeCallCounts(server.url)) calls.set(operation, count - (first.get(operation) ?? 0));
        },
      }
    : undefined;
  const measurement = await measure(spec, server.pid, around);
  if (!otpdServer || measurement.requests === 0) return { measurement };
  const storeCalls: Record<string, number> = {};
  for (const [operation, count] of calls) if (count > 0) storeCalls[operation] = Math.round((count / measurement.requests) * 100) / 100;
  return { measurement, storeCalls };
}

/**
 * The rate a pool is sized for when this run measured none to size it from (an `--only` run): above any
 * right-code check rate this 2-core machine kind has served (14,602 a second on its fastest day; with the
 * 30% margin a pool covers 19,500), since a pool that runs out makes its row a mix of real checks and cheap
 * replays.
 */
const UNMEASURED_RATE = 15_000;
/** The same for the peer's verify pools (its verifies run at 190–650 a second here). */
const UNMEASURED_PEER_RATE = 1_000;

/** Requests one pool must cover: the measured run and its warm-up (of `processes` processes, see load) at `rate`, with a margin. */
function poolSize(rate: number, processes = 1): number {
  return Math.ceil(rate * (options.durationSeconds + options.warmupSeconds * processes) * 1.3) + 500;
}

/** Hands out pool entries in order; counts how often it had to start over (a pool too small). */
class Cursor<T> {
  private index = 0;
  /** `uses`: how many requests one entry may serve as intended (wrong codes: up to maxAttempts - 1). */
  constructor(
    private readonly items: T[],
    private readonly uses = 1,
  ) {}
  next(): T {
    return this.items[this.index++ % this.items.length]!;
  }
  overrun(): string | undefined {
    const capacity = this.items.length * this.uses;
    return this.index > capacity ? `pool of ${this.items.length} ran out: ${this.index - capacity} requests reused an entry beyond its ${this.uses} use(s)` : undefined;
  }
}

/**
 * Waits until the server's CPU use falls under 8% of a core over half a second (its outbox and audit have
 * caught up; an idle server polls its outbox and uses 1-3%), at most 30 s.
 */
async function settle(server: ServerProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const before = cpuSnapshot(server.pid);
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (cpuSince(server.pid, before) <= 0.04) return;
  }
  log('    (the server did not fall quiet within 30 s)');
}

// --- the ceiling -------------------------------------------------------------------------------------

async function echo(): Promise<void> {
  if (!wanted('echo')) return;
  log('bare Fastify echo');
  const port = await freePort();
  const server = await startProcess({ name: 'echo', args: ['bench/servers/echo.mjs'], env: { ...process.env, PORT: String(port) }, url: `http://127.0.0.1:${port}`, readyPath: '/', cwd: ROOT });
  try {
    await record('echo', 'bare Fastify JSON echo', null, server, load(server.url, { method: 'POST', path: '/echo', body: JSON.stringify({ to: '+15550000000', code: '123456' }), expect: [200] }));
  } finally {
    await server.stop();
  }
}

/** The native API's credential for `otpd`'s bench app. */
const bearer = (otpd: OtpdUnderTest) => ({ authorization: `Bearer ${otpd.apiKey}` });

/** POST /v1/verifications to a new number each time. */
function nativeCreate(otpd: OtpdUnderTest, server: ServerProcess, destinations: Destinations = otpd.destinations): LoadSpec {
  return load(server.url, {
    method: 'POST',
    path: '/v1/verifications',
    headers: bearer(otpd),
    expect: [201],
    next: (request) => {
      request.body = JSON.stringify({ to: destinations.take() });
    },
  }, otpd.target.workers);
}

/** POST /v1/verifications/ID/check with the right code, another pooled verification each time. */
function nativeCheckRight(otpd: OtpdUnderTest, server: ServerProcess, pool: Cursor<PooledCode>): LoadSpec {
  return load(server.url, {
    method: 'POST',
    path: '/v1/verifications/x/check',
    headers: bearer(otpd),
    expect: [200],
    next: (request) => {
      const entry = pool.next();
      request.path = `/v1/verifications/${entry.id}/check`;
      request.body = JSON.stringify({ code: entry.code });
    },
  }, otpd.target.workers);
}

// --- otpd ------------------------------------------------------------------------------------------

async function otpd(target: OtpdTarget): Promise<void> {
  const ids = ['native-create', 'native-check-wrong', 'native-check-right', 'totp-verify', '002-create', '002-check', 'native-create-scattered'].map((name) => `${name}@${target.label}`);
  if (!ids.some(wanted)) return;
  const label = target.store === 'sqlite' ? 'SQLite, 1 process' : target.workers === 1 ? 'Redis, 1 process' : `Redis, ${target.workers} workers`;
  log(`otpd on ${label}`);
  const otpd = new OtpdUnderTest(target, ROOT);
  try {
    await otpd.setUp();
    // Checks of a wrong code: each pooled verification takes 19 of them before it would lock (maxAttempts 20).
    const wrongPool = wanted(ids[1]!) ? await otpd.verificationPool(Math.ceil(poolSize(20_000, target.workers) / 19), { maxAttempts: 20 }) : [];
    const server = await otpd.start(options.profile ? ['--import', join(ROOT, 'bench', 'lib', 'profile-window.mjs')] : [], options.profile ? { BENCH_PROFILE_DIR: PROFILES } : {});
    // Whatever setup queued that this process did not send yet is sent before anything is measured.
    await settle(server);
    const key = bearer(otpd);
    const suffix = `@${target.label}`;
    let rate = UNMEASURED_RATE;

    if (wanted(ids[0]!)) {
      await record(`native-create${suffix}`, `native create (${label})`, 'send', server, nativeCreate(otpd, server));
      await settle(server);
    }

    // The same on SQLite with numbers spread as real traffic's are, right after the row above (not on
    // Redis, where key order does not matter).
    if (target.store === 'sqlite' && wanted(ids[6]!)) {
      await record(`native-create-scattered${suffix}`, `native create, scattered numbers (${label})`, 'send', server, nativeCreate(otpd, server, otpd.scatteredDestinations));
      await settle(server);
    }

    if (wanted(ids[1]!)) {
      const pool = new Cursor(wrongPool, 19);
      await record(`native-check-wrong${suffix}`, `native check, wrong code (${label})`, null, server, load(server.url, {
        method: 'POST',
        path: '/v1/verifications/x/check',
        headers: key,
        expect: [200],
        next: (request) => {
          const entry = pool.next();
          request.path = `/v1/verifications/${entry.id}/check`;
          request.body = JSON.stringify({ code: wrongCode(entry.code) });
        },
      }, target.workers), () => pool.overrun());
      rate = rows[rows.length - 1]!.measurement.rps;
      await settle(server);
    }

    if (wanted(ids[2]!)) {
      log(`    (pool of ${poolSize(rate, target.workers)} verifications)`);
      const pool = new Cursor(await otpd.verificationPool(poolSize(rate, target.workers)));
      await settle(server);
      await record(`native-check-right${suffix}`, `native check, right code (${label})`, 'verify', server, nativeCheckRight(otpd, server, pool), () => pool.overrun());
      await settle(server);
    }

    if (wanted(ids[3]!)) {
      log(`    (pool of ${poolSize(rate, target.workers)} TOTP factors)`);
      const pool = new Cursor<PooledFactor>(await otpd.factorPool(poolSize(rate, target.workers)));
      await settle(server);
      await record(`totp-verify${suffix}`, `TOTP verify (${label})`, null, server, load(server.url, {
        method: 'POST',
        path: '/v1/factors/x/verify',
        headers: key,
        expect: [200],
        next: (request) => {
          const factor = pool.next();
          request.path = `/v1/factors/${factor.id}/verify`;
          request.body = JSON.stringify({ code: totpNow(factor) });
        },
      }, target.workers), () => pool.overrun());
      await settle(server);
    }

    const apiKey002 = { 'x-api-key': otpd.apiKey };
    if (wanted(ids[4]!)) {
      await record(`002-create${suffix}`, `seed 002 create (${label})`, 'send', server, load(server.url, {
        method: 'PUT',
        path: '/api/otp/x',
        headers: apiKey002,
        expect: [200],
        next: (request) => {
          const to = otpd.destinations.take();
          request.path = `/api/otp/bench-${to.slice(1)}`;
          request.body = JSON.stringify({ to });
        },
      }, target.workers));
      await settle(server);
    }

    if (wanted(ids[5]!)) {
      log(`    (pool of ${poolSize(rate, target.workers)} seed-002 verifications)`);
      const pool = new Cursor<PooledCode>(await otpd.namedPool(poolSize(rate, target.workers)));
      await settle(server);
      await record(`002-check${suffix}`, `seed 002 check, right code (${label})`, 'verify', server, load(server.url, {
        method: 'POST',
        path: '/api/otp/x',
        headers: apiKey002,
        expect: [200],
        next: (request) => {
          const entry = pool.next();
          request.path = `/api/otp/${entry.id}`;
          request.body = JSON.stringify({ otp: entry.code });
        },
      }, target.workers), () => pool.overrun());
    }
  } finally {
    await otpd.close();
  }
}

/** Starts (or stops) the profiler of every process of the server (the primary and its workers); returns their pids. */
function toggleProfiles(rootPid: number): number[] {
  const pids = processTree(rootPid);
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  return pids;
}

/** Stops the profiles `toggleProfiles` started, waits (at most 30 s) until each is written, names them after the row and prints them. */
async function collectProfiles(pids: number[], row: string): Promise<void> {
  const before = new Set(readdirSync(PROFILES));
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  const files: string[] = [];
  const deadline = Date.now() + 30_000;
  for (const pid of pids) {
    let written: string | undefined;
    while (written === undefined && Date.now() < deadline) {
      written = readdirSync(PROFILES).find((name) => name.startsWith(`${pid}-`) && name.endsWith('.cpuprofile') && !before.has(name));
      if (written === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (written === undefined) {
      log(`    (process ${pid} wrote no profile within 30 s)`);
      continue;
    }
    const named = join(PROFILES, `${row}-${pid}.cpuprofile`);
    renameSync(join(PROFILES, written), named);
    files.push(named);
  }
  if (files.length > 0) printProfile(files, row);
}

function printProfile(files: string[], row: string): void {
  const { total, functions, inclusive } = selfTimes(files);
  // Shares of the time the processes were busy: idle samples (waiting for the next request) would dwarf them.
  const busy = total - (functions.find((f) => f.name === '(idle)')?.selfMs ?? 0);
  const share = (ms: number) => `${((ms / busy) * 100).toFixed(1).padStart(5)}%`;
  log(`  profile of ${row}'s measured run (${Math.round(busy)} ms busy of ${Math.round(total)} ms sampled, ${files.length} process${files.length === 1 ? '' : 'es'}; ${relative(ROOT, PROFILES)}/${row}-PID.cpuprofile): self time, share of busy`);
  for (const f of functions.filter((f) => f.name !== '(idle)').slice(0, 25)) log(`    ${share(f.selfMs)}  ${f.name}  ${f.where}`);
  log('  with callees (otpd code):');
  for (const f of inclusive.filter((f) => f.where.startsWith('dist/')).slice(0, 25)) log(`    ${share(f.selfMs)}  ${f.name}  ${f.where}`);
}

/** A code of the same length that is certainly not the right one. */
function wrongCode(code: string): string {
  const last = Number(code[code.length - 1]);
  return code.slice(0, -1) + String((last + 1) % 10);
}

// --- the peer ----------------------------------------------------------------------------------------

interface PeerCode {
  phoneNumber: string;
  code: string;
}

/** better-auth's phone-number plugin on a fresh SQLite file of its own (bench/peers/better-auth.mjs). */
class Peer {
  private counter = 0;

  private constructor(
    readonly server: ServerProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<Peer> {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-bench-peer-'));
    const port = await freePort();
    const server = await startProcess({
      name: 'better-auth',
      args: ['bench/peers/better-auth.mjs'],
      env: { ...process.env, PORT: String(port), PEER_DB: join(dir, 'peer.db') },
      url: `http://127.0.0.1:${port}`,
      readyPath: '/__bench/codes',
      cwd: ROOT,
    });
    return new Peer(server, dir);
  }

  private number(): string {
    return `+1666${String(this.counter++).padStart(7, '0')}`;
  }

  /** POST send-otp to a new number each time. */
  send(): LoadSpec {
    return load(this.server.url, {
      method: 'POST',
      path: '/api/auth/phone-number/send-otp',
      expect: [200],
      next: (request) => {
        request.body = JSON.stringify({ phoneNumber: this.number() });
      },
    });
  }

  /** The codes the peer kept since the last call (it forgets them then). */
  async takeCodes(): Promise<Record<string, string>> {
    return (await (await fetch(this.server.url + '/__bench/codes', { signal: AbortSignal.timeout(10_000) })).json()) as Record<string, string>;
  }

  /** Codes sent beforehand, 100 at a time, for `verify`. */
  async verifyPool(size: number): Promise<PeerCode[]> {
    await this.takeCodes();
    const numbers = Array.from({ length: size }, () => this.number());
    for (let start = 0; start < numbers.length; start += 100) {
      await Promise.all(numbers.slice(start, start + 100).map((phoneNumber) => fetch(this.server.url + '/api/auth/phone-number/send-otp', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ phoneNumber }) })));
    }
    const codes = await this.takeCodes();
    await settle(this.server);
    return numbers.map((phoneNumber) => ({ phoneNumber, code: codes[phoneNumber]! }));
  }

  /** POST verify with the right code of another pooled number each time (signs the person up). */
  verify(pool: Cursor<PeerCode>): LoadSpec {
    return load(this.server.url, {
      method: 'POST',
      path: '/api/auth/phone-number/verify',
      expect: [200],
      next: (request) => {
        request.body = JSON.stringify(pool.next());
      },
    });
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function peer(): Promise<void> {
  if (!wanted('peer-send') && !wanted('peer-verify')) return;
  log('peer: better-auth phone-number plugin (SQLite)');
  const peer = await Peer.start();
  try {
    let rate = 2_000;
    if (wanted('peer-send')) {
      await record('peer-send', 'better-auth phone-number: send OTP', null, peer.server, peer.send());
      rate = rows[rows.length - 1]!.measurement.rps;
    }
    if (wanted('peer-verify')) {
      // As many codes as the send rate suggests verify can use, with a margin.
      const size = poolSize(rate);
      log(`    (pool of ${size} sent codes)`);
      const pool = new Cursor(await peer.verifyPool(size));
      await record('peer-verify', 'better-auth phone-number: verify (sign-up + session)', null, peer.server, peer.verify(pool), () => pool.overrun());
    }
  } finally {
    await peer.stop();
  }
}

// --- alternating rounds ------------------------------------------------------------------------------

/**
 * A target that compares two measurements is decided by rounds of its own: this machine's speed drifts by
 * up to 2× within minutes, more than a target's margin (one process measured a minute before two workers
 * gave 0.96× in one run and 1.38× in the next). Both servers run side by side (an idle one costs 0-3% of a
 * core) and are measured alternately, A first in the first and third round and last in the second, after
 * one uncounted measurement of each (a fresh server's first load was the highest round in two of three
 * runs without it). The median of the rounds' ratios decides.
 */
const ROUNDS = 3;

/** One measurement's load and, where it draws on a pool, what it says after the run if the pool ran out. */
interface Prepared {
  spec: LoadSpec;
  overrun?: () => string | undefined;
}

interface Contender {
  name: string;
  server: ServerProcess;
  /** An otpd server (its store calls are read from /metrics), not the peer. */
  otpd: boolean;
  /**
   * Sets up one measurement. `fastest`: the highest req/s this side has shown in these rounds so far (0
   * before its first), so that a pool is sized for the fastest the side has been, not the rate it was first
   * measured at (the peer's verify once ran at 610 req/s in round 3 after 293 and 352).
   */
  prepare: (fastest: number) => Prepared | Promise<Prepared>;
}

interface Round {
  /** Which side ran first in this round. */
  first: string;
  a: Measurement;
  b: Measurement;
  ratio: number;
  /** Why the round is left out of the median (a side's pool ran out), when it is. */
  flaw?: string;
}

interface Alternation {
  a: string;
  b: string;
  /** What `ratio` is. */
  ratioOf: string;
  rounds: Round[];
}

/** By target name. */
const alternations = new Map<string, Alternation>();

async function alternate(target: string, a: Contender, b: Contender, ratioOf: { text: string; of: (a: Measurement, b: Measurement) => number }, uncounted: boolean): Promise<void> {
  const fastest = new Map<Contender, number>([[a, 0], [b, 0]]);
  /** One measurement of `side`, with a flaw when its pool ran out. */
  const run = async (side: Contender): Promise<{ measurement: Measurement; flaw?: string }> => {
    const prepared = await side.prepare(fastest.get(side)!);
    const { measurement } = await measureServer(side.otpd, side.server, prepared.spec);
    fastest.set(side, Math.max(fastest.get(side)!, measurement.rps));
    const overrun = prepared.overrun?.();
    return overrun ? { measurement, flaw: `${side.name}: ${overrun}` } : { measurement };
  };
  if (uncounted) {
    for (const side of [a, b]) {
      const { measurement, flaw } = await run(side);
      log(`  not counted, ${side.name}: ${summary(measurement)}${flaw ? ` (${flaw})` : ''}`);
    }
  }
  const rounds: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [a, b] : [b, a];
    const measured = new Map<Contender, Measurement>();
    const flaws: string[] = [];
    for (const side of order) {
      const { measurement, flaw } = await run(side);
      measured.set(side, measurement);
      if (flaw) flaws.push(flaw);
      log(`  round ${round + 1}, ${side.name}: ${summary(measurement)}${flaw ? ` (${flaw}: this round is left out)` : ''}`);
    }
    const [first, second] = [measured.get(a)!, measured.get(b)!];
    rounds.push({ first: order[0]!.name, a: first, b: second, ratio: ratioOf.of(first, second), ...(flaws.length > 0 ? { flaw: flaws.join('; ') } : {}) });
  }
  alternations.set(target, { a: a.name, b: b.name, ratioOf: ratioOf.text, rounds });
}

/**
 * A fresh pool for each measurement of a round, sized for the faster of `estimate` (what the rows before
 * measured, or a floor) and the fastest this side has been so far.
 */
function pooledRounds<T>(estimate: number, processes: number, what: string, make: (size: number) => Promise<T[]>, spec: (pool: Cursor<T>) => LoadSpec): Contender['prepare'] {
  return async (fastest) => {
    const size = poolSize(Math.max(estimate, fastest), processes);
    log(`    (pool of ${size} ${what})`);
    const pool = new Cursor(await make(size));
    return { spec: spec(pool), overrun: () => pool.overrun() };
  };
}

/** Requests per second of A over B's: an otpd row over the peer's. */
const THROUGHPUT = { text: 'req/s of a over b', of: (a: Measurement, b: Measurement) => (b.rps > 0 ? a.rps / b.rps : Number.NaN) };
/** CPU per request of B over A's: two workers over one process. */
const CPU_GROWTH = { text: 'CPU µs per request of b over a', of: (a: Measurement, b: Measurement) => (a.cpuMicrosPerRequest > 0 ? b.cpuMicrosPerRequest / a.cpuMicrosPerRequest : Number.NaN) };

const PEER_TARGETS = { create: 'native create vs peer send, SQLite', check: 'native check (right code) vs peer verify, SQLite' };

/** otpd on SQLite (one process) against the peer: creates against its sends, right checks against its verifies. */
async function peerRounds(): Promise<void> {
  const create = wanted('native-create@peer-rounds');
  const check = wanted('native-check-right@peer-rounds');
  if (!create && !check) return;
  log(`otpd (SQLite, 1 process) against the peer, alternating, ${ROUNDS} rounds`);
  const otpd = new OtpdUnderTest({ label: 'sqlite-peer-rounds', store: 'sqlite', workers: 1 }, ROOT);
  let peer: Peer | undefined;
  try {
    await otpd.setUp();
    const server = await otpd.start();
    peer = await Peer.start();
    const them = peer;
    await settle(server);
    if (create) {
      log('native create against peer send');
      await alternate(PEER_TARGETS.create, { name: 'otpd', server, otpd: true, prepare: () => ({ spec: nativeCreate(otpd, server) }) }, { name: 'peer', server: them.server, otpd: false, prepare: () => ({ spec: them.send() }) }, THROUGHPUT, true);
    }
    if (check) {
      // Pools sized from the rows above; the peer's never for less than UNMEASURED_PEER_RATE, since its
      // verify rate doubled between rounds in one run.
      log('native check (right code) against peer verify');
      const ours = pooledRounds(find('native-check-right@sqlite')?.rps ?? UNMEASURED_RATE, 1, 'verifications', (size) => otpd.verificationPool(size), (pool) => nativeCheckRight(otpd, server, pool));
      const theirs = pooledRounds(Math.max(find('peer-verify')?.rps ?? 0, UNMEASURED_PEER_RATE), 1, 'sent codes', (size) => them.verifyPool(size), (pool) => them.verify(pool));
      await alternate(PEER_TARGETS.check, { name: 'otpd', server, otpd: true, prepare: ours }, { name: 'peer', server: them.server, otpd: false, prepare: theirs }, THROUGHPUT, !create);
    }
  } finally {
    await peer?.stop();
    await otpd.close();
  }
}

const twoWorkerTarget = (scenario: string) => `${scenario}: server CPU per request, 2 workers vs 1 process on Redis`;

/** One process against two workers on Redis, for creates and right-code checks (CPU per request). */
async function twoWorkerPairs(): Promise<void> {
  const scenarios = ['native-create', 'native-check-right'].filter((scenario) => wanted(`${scenario}@redis-pairs`));
  if (scenarios.length === 0) return;
  log(`two workers against one process on Redis, alternating, ${ROUNDS} rounds`);
  const one = new OtpdUnderTest({ label: 'redis-pairs-1p', store: 'redis', workers: 1 }, ROOT);
  const two = new OtpdUnderTest({ label: 'redis-pairs-2w', store: 'redis', workers: 2 }, ROOT);
  try {
    await one.setUp();
    await two.setUp();
    const servers = new Map([[one, await one.start()], [two, await two.start()]]);
    for (const scenario of scenarios) {
      log(scenario);
      const uncounted = scenario === scenarios[0];
      // Check pools sized from the rate the Redis rows measured.
      const rate = find('native-check-right@redis')?.rps ?? UNMEASURED_RATE;
      const side = (otpd: OtpdUnderTest, name: string): Contender => {
        const server = servers.get(otpd)!;
        const prepare: Contender['prepare'] =
          scenario === 'native-create'
            ? () => ({ spec: nativeCreate(otpd, server) })
            : pooledRounds(rate, otpd.target.workers, `verifications for ${otpd.target.label}`, (size) => otpd.verificationPool(size), (pool) => nativeCheckRight(otpd, server, pool));
        return { name, server, otpd: true, prepare };
      };
      await alternate(twoWorkerTarget(scenario), side(one, '1 process'), side(two, '2 workers'), CPU_GROWTH, uncounted);
    }
  } finally {
    await one.close();
    await two.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

// --- report ------------------------------------------------------------------------------------------

interface Target {
  name: string;
  met: boolean | null;
  detail: string;
}

function find(id: string): Measurement | undefined {
  return rows.find((row) => row.id === id)?.measurement;
}

function storeCallsOf(id: string): number | undefined {
  const calls = rows.find((row) => row.id === id)?.storeCalls;
  return calls && Object.values(calls).reduce((a, b) => a + b, 0);
}

function ratio(a: Measurement | undefined, b: Measurement | undefined): number | undefined {
  return a && b && b.rps > 0 ? a.rps / b.rps : undefined;
}

/**
 * A target decided by alternating rounds when they ran: the median of their ratios, each round's ratio and
 * its two numbers in the detail. `undefined` when they did not run.
 */
function fromRounds(name: string, check: (value: number) => boolean, bound: string, numbers: (round: Round) => string): Target | undefined {
  const alternation = alternations.get(name);
  if (!alternation || alternation.rounds.length === 0) return undefined;
  const counted = alternation.rounds.filter((round) => !round.flaw);
  const rounds = alternation.rounds.map((round) => `${round.ratio.toFixed(2)}× (${numbers(round)}, ${round.first} first${round.flaw ? `; left out: ${round.flaw}` : ''})`).join(', ');
  if (counted.length === 0) return { name, met: null, detail: `no clean round of ${alternation.rounds.length} (target ${bound}): ${rounds}` };
  const value = median(counted.map((round) => round.ratio));
  return { name, met: check(value), detail: `${value.toFixed(2)}×, the median of ${counted.length} alternating rounds (target ${bound}): ${rounds}` };
}

function targets(): Target[] {
  const echoRow = find('echo');
  const out: Target[] = [];
  const atLeast = (name: string, value: number | undefined, min: number, unit = '×') =>
    out.push({ name, met: value === undefined ? null : value >= min, detail: value === undefined ? 'not measured' : `${value.toFixed(2)}${unit} (target ≥ ${min}${unit})` });
  atLeast('native check (right code) vs bare echo, SQLite 1 process', ratio(find('native-check-right@sqlite'), echoRow), 0.7);
  atLeast('native check (wrong code) vs bare echo, SQLite 1 process', ratio(find('native-check-wrong@sqlite'), echoRow), 0.7);
  atLeast('native create vs bare echo, SQLite 1 process', ratio(find('native-create@sqlite'), echoRow), 0.6);
  const checkP99 = find('native-check-right@sqlite')?.p99;
  out.push({ name: 'native check p99 at 100 connections, SQLite 1 process', met: checkP99 === undefined ? null : checkP99 < 10, detail: checkP99 === undefined ? 'not measured' : `${checkP99} ms (target < 10 ms)` });
  const throughputs = (round: Round) => `${Math.round(round.a.rps)} vs ${Math.round(round.b.rps)} req/s`;
  for (const [name, id, peerId, min] of [
    [PEER_TARGETS.check, 'native-check-right@sqlite', 'peer-verify', 25],
    [PEER_TARGETS.create, 'native-create@sqlite', 'peer-send', 10],
  ] as const) {
    const rounds = fromRounds(name, (value) => value >= min, `≥ ${min}×`, throughputs);
    if (rounds) out.push(rounds);
    else atLeast(name, ratio(find(id), find(peerId)), min);
  }
  for (const scenario of ['native-create', 'native-check-right']) {
    const name = twoWorkerTarget(scenario);
    const rounds = fromRounds(name, (value) => value <= 1.2, '≤ 1.2×', (round) => `${Math.round(round.b.cpuMicrosPerRequest)} vs ${Math.round(round.a.cpuMicrosPerRequest)} µs`);
    if (rounds) {
      out.push(rounds);
      continue;
    }
    const one = find(`${scenario}@redis`);
    const two = find(`${scenario}@redis-2w`);
    const growth = one && two && one.cpuMicrosPerRequest > 0 ? two.cpuMicrosPerRequest / one.cpuMicrosPerRequest : undefined;
    out.push({
      name,
      met: growth === undefined ? null : growth <= 1.2,
      detail:
        growth === undefined
          ? 'not measured'
          : `${growth.toFixed(2)}× (${Math.round(two!.cpuMicrosPerRequest)} vs ${Math.round(one!.cpuMicrosPerRequest)} µs; target ≤ 1.2×); store calls per request ${storeCallsOf(`${scenario}@redis-2w`)?.toFixed(2) ?? '?'} vs ${storeCallsOf(`${scenario}@redis`)?.toFixed(2) ?? '?'}; preemptions per request ${two!.involuntarySwitchesPerRequest.toFixed(2)} vs ${one!.involuntarySwitchesPerRequest.toFixed(2)}, sleeps ${two!.voluntarySwitchesPerRequest.toFixed(2)} vs ${one!.voluntarySwitchesPerRequest.toFixed(2)}`,
    });
  }
  return out;
}

function table(): string {
  const echoRow = find('echo');
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'CPU µs/req', 'loop µs/req', '× echo', '× peer'];
  // Printed with the peer last, as docs/performance.md keeps the table, whatever order they ran in.
  const ordered = [...rows.filter((row) => !row.id.startsWith('peer-')), ...rows.filter((row) => row.id.startsWith('peer-'))];
  const lines = ordered.map((row) => {
    const m = row.measurement;
    const peerRow = row.peer === 'send' ? find('peer-send') : row.peer === 'verify' ? find('peer-verify') : undefined;
    const x = (value: number | undefined) => (value === undefined ? '–' : value.toFixed(2));
    return [row.scenario + (row.note ? ' *' : ''), Math.round(m.rps).toString(), String(m.p50), String(m.p99), String(m.errors), Math.round(m.cpuMicrosPerRequest).toString(), Math.round(m.loopCpuMicrosPerRequest).toString(), row.id === 'echo' ? '1.00' : x(ratio(m, echoRow)), x(ratio(m, peerRow))];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => '| ' + cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ') + ' |';
  const separator = '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  const notes = ordered.filter((row) => row.note).map((row) => `* ${row.id}: ${row.note}`);
  return [format(header), separator, ...lines.map(format), ...notes].join('\n');
}

function machine(): Record<string, unknown> {
  const cpu = cpus();
  return { hostname: hostname(), cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryGiB: Math.round(totalmem() / 2 ** 30), os: `${platform()} ${release()}`, node: process.version };
}

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

async function redisAnswers(): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  // otpd runs as deployed: from dist/, rebuilt when src/ changed since the last build.
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-if-needed.mjs')], { cwd: ROOT, stdio: 'inherit' });
  // The rows a target compares run next to each other: this machine's speed drifts by up to 2× within
  // minutes (the echo: 27,200 and 15,400 req/s in two runs 15 minutes apart), so the SQLite rows come
  // right after the echo and right before the peer, and the Redis rows, compared only with each other, last;
  // the targets that compare two servers are decided by alternating rounds of their own (alternate).
  await echo();
  await otpd({ label: 'sqlite', store: 'sqlite', workers: 1 });
  await peer();
  await peerRounds();
  if (await redisAnswers()) {
    await otpd({ label: 'redis', store: 'redis', workers: 1 });
    await otpd({ label: 'redis-2w', store: 'redis', workers: 2 });
    await twoWorkerPairs();
  } else if (['redis', 'redis-2w'].some((label) => wanted(`@${label}`))) {
    log(`Redis does not answer on ${REDIS_URL}: the Redis scenarios are skipped (set BENCH_REDIS_URL)`);
  }

  const results = targets();
  const text = table();
  process.stdout.write(`\n${text}\n\nTargets:\n${results.map((t) => `  ${t.met === null ? '–   ' : t.met ? 'met ' : 'MISS'}  ${t.name}: ${t.detail}`).join('\n')}\n`);
  const seconds = Math.round((Date.now() - started) / 1000);
  process.stdout.write(`\n(${seconds} s in all; ${options.connections} connections, ${options.durationSeconds} s per scenario after ${options.warmupSeconds} s of warm-up per server process)\n`);

  if (options.save && rows.length > 0) {
    const info = machine();
    const date = new Date().toISOString();
    const slug = `${date.slice(0, 10)}-${String(info.cores)}core-${String(info.cpu).replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40)}`;
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    // A second run of the same day on the same machine gets the time too, so it never overwrites the first.
    const base = `${slug}${options.only.length > 0 ? '-partial' : ''}`;
    const file = [join(dir, `${base}.json`), join(dir, `${base}-${date.slice(11, 13)}${date.slice(14, 16)}.json`)].find((path) => !existsSync(path)) ?? join(dir, `${base}-${date.slice(11, 19).replace(/:/g, '')}.json`);
    const body = {
      date,
      machine: info,
      commit: commit(),
      options: { connections: options.connections, durationSeconds: options.durationSeconds, warmupSeconds: options.warmupSeconds, only: options.only },
      rows: rows.map((row) => ({
        id: row.id,
        scenario: row.scenario,
        ...row.measurement,
        vsEcho: ratio(row.measurement, find('echo')) ?? null,
        vsPeer: ratio(row.measurement, row.peer === 'send' ? find('peer-send') : row.peer === 'verify' ? find('peer-verify') : undefined) ?? null,
        note: row.note ?? null,
        storeCallsPerRequest: row.storeCalls ?? null,
      })),
      rounds: Object.fromEntries(alternations),
      targets: results,
      table: text,
      runSeconds: seconds,
      runId: randomBytes(4).toString('hex'),
    };
    writeFileSync(file, JSON.stringify(body, null, 2) + '\n');
    process.stdout.write(`written to ${file.slice(ROOT.length)}\n`);
  }
}

await main();
