/**
 * One measurement: a warm-up, then a fixed-time autocannon run at N connections, with the server's CPU time
 * read from /proc before and after (src: bench/lib/processes.ts).
 */
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { contextSwitches, cpuSince, cpuSnapshot } from './processes.js';

export interface LoadSpec {
  url: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** The request, or a function that fills in each one (called once per request, before it is sent). */
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  next?: (request: { path?: string; body?: string | Buffer }) => void;
  /** Status codes that count as a correct answer (anything else is an error). */
  expect: number[];
  /** A fixed request rate (req/s over all connections) instead of as fast as the server answers. */
  rate?: number;
}

export interface Measurement {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  statuses: Record<string, number>;
  /** Server CPU (user + system, all its processes) during the measured run. */
  cpuSeconds: number;
  cpuMicrosPerRequest: number;
  /**
   * The part of it spent on the servers' event-loop threads (summed over processes). One process serves
   * at most 1 s of loop time per second, so this bounds its throughput where the machine has a core to
   * spare; work otpd hands to libuv's thread pool (receipt signatures) is in cpuMicrosPerRequest only.
   */
  loopCpuMicrosPerRequest: number;
  /**
   * Context switches of the server's threads per request in the same window: involuntary ones count how
   * often the scheduler preempted otpd for another runnable process (the cores were oversubscribed);
   * voluntary ones how often a thread went to sleep waiting (fewer requests shared each wake-up).
   */
  voluntarySwitchesPerRequest: number;
  involuntarySwitchesPerRequest: number;
}

async function fire(spec: LoadSpec, seconds: number): Promise<Result> {
  const request: RequestSpec = {
    method: spec.method,
    path: spec.path,
    headers: { 'content-type': 'application/json', ...spec.headers },
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.next
      ? {
          setupRequest: (raw) => {
            spec.next!(raw);
            return raw;
          },
        }
      : {}),
  };
  return autocannon({ url: spec.url, connections: spec.connections, duration: seconds, timeout: 10, requests: [request], ...(spec.rate === undefined ? {} : { overallRate: spec.rate }) });
}

/**
 * Runs the warm-up, then the measured run of `serverPid`'s process tree. `around` runs right before and
 * right after the measured run; the CPU window ends after `after` (bench/run.ts waits there until otpd has
 * caught up with what the requests queued, and reads its metrics).
 */
export async function measure(spec: LoadSpec, serverPid: number, around?: { before(): Promise<void>; after(): Promise<void> }): Promise<Measurement> {
  if (spec.warmupSeconds > 0) await fire(spec, spec.warmupSeconds);
  await around?.before();
  const before = cpuSnapshot(serverPid);
  const loopBefore = cpuSnapshot(serverPid, true);
  const switchesBefore = contextSwitches(serverPid);
  const result = await fire(spec, spec.durationSeconds);
  // `after` waits until the work the requests left behind (otpd's outbox, audit batches) is done: that CPU
  // belongs to these requests too.
  await around?.after();
  const cpuSeconds = cpuSince(serverPid, before);
  const loopCpuSeconds = cpuSince(serverPid, loopBefore, true);
  const switchesAfter = contextSwitches(serverPid);
  const statuses: Record<string, number> = {};
  let unexpected = 0;
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[status] = count;
    if (!spec.expect.includes(Number(status))) unexpected += count;
  }
  const requests = result.requests.total;
  const seconds = result.duration;
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: unexpected + result.errors + result.timeouts,
    statuses,
    cpuSeconds,
    cpuMicrosPerRequest: requests > 0 ? (cpuSeconds * 1e6) / requests : 0,
    loopCpuMicrosPerRequest: requests > 0 ? (loopCpuSeconds * 1e6) / requests : 0,
    // A thread that ended during the window takes its count with it: never below zero.
    voluntarySwitchesPerRequest: requests > 0 ? Math.max(0, switchesAfter.voluntary - switchesBefore.voluntary) / requests : 0,
    involuntarySwitchesPerRequest: requests > 0 ? Math.max(0, switchesAfter.involuntary - switchesBefore.involuntary) / requests : 0,
  };
}
