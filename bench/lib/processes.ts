/**
 * Server processes for the benchmark: spawned on loopback, waited for, measured through /proc and stopped.
 * CPU is read from /proc/<pid>/stat (utime + stime, in clock ticks) of the process and all its children
 * (the workers of `otpd serve --workers N`), before and after a measurement.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Linux reports utime/stime in USER_HZ ticks: 100 per second on every mainstream architecture. */
const TICKS_PER_SECOND = 100;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The direct children of a process (Linux: /proc/PID/task/PID/children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process and its descendants. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 64; i++) out.push(...childrenOf(out[i]!));
  return out;
}

/**
 * utime + stime in seconds (0 once it is gone) of one process, or with `loopOnly` of its main thread
 * alone (/proc/PID/task/PID/stat), where node runs the event loop and better-sqlite3's statements:
 * the signing thread (Ed25519 receipts), the checkpointer, libuv's thread pool and V8's helper threads
 * (parallel GC, compilation) are left out.
 */
function cpuSecondsOf(pid: number, loopOnly: boolean): number {
  try {
    const stat = readFileSync(loopOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state(3) ppid(4) ... utime is field 14 and stime field 15 of the whole line.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds per pid of a process tree (with `loopOnly`, of each process's event-loop thread), to subtract a later snapshot from. */
export function cpuSnapshot(rootPid: number, loopOnly = false): Map<number, number> {
  return new Map(processTree(rootPid).map((pid) => [pid, cpuSecondsOf(pid, loopOnly)]));
}

/** CPU seconds the tree used since `before` (processes that appeared since count from zero). */
export function cpuSince(rootPid: number, before: Map<number, number>, loopOnly = false): number {
  let total = 0;
  for (const [pid, seconds] of cpuSnapshot(rootPid, loopOnly)) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Context switches of every thread of a process tree, summed (/proc/PID/task/TID/status). */
export interface ContextSwitches {
  /** The thread gave up the CPU itself: it waited for I/O, a lock or a timer. */
  voluntary: number;
  /** The scheduler took the CPU away to run another runnable thread: cores were oversubscribed. */
  involuntary: number;
}

export function contextSwitches(rootPid: number): ContextSwitches {
  const total: ContextSwitches = { voluntary: 0, involuntary: 0 };
  for (const pid of processTree(rootPid)) {
    let threads: string[];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of threads) {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        total.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        total.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      } catch {
        /* the thread ended meanwhile */
      }
    }
  }
  return total;
}

export interface ServerProcess {
  name: string;
  pid: number;
  url: string;
  /** The last lines the process wrote on stderr (for error messages). */
  stderrTail(): string;
  stop(): Promise<void>;
}

/**
 * Starts `node ARGS…` with `env` and waits until `readyPath` on `url` answers (any HTTP status). Its stdout
 * (otpd's JSON log lines) goes to /dev/null: written, as in production, but not kept.
 */
export async function startProcess(options: { name: string; args: string[]; env: NodeJS.ProcessEnv; url: string; readyPath: string; cwd: string }): Promise<ServerProcess> {
  // BENCH_SERVER_LOG=FILE keeps the servers' stdout (otpd's JSON log lines) for debugging a run.
  const out = process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, 'a') : 'ignore';
  const child: ChildProcess = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') closeSync(out);
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
  });
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? code}`;
      resolve();
    });
  });
  const handle: ServerProcess = {
    name: options.name,
    pid: child.pid!,
    url: options.url,
    stderrTail: () => tail,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = sleep(STOP_TIMEOUT_MS).then(() => {
        if (!exited) child.kill('SIGKILL');
      });
      await Promise.race([exitedPromise, timer]);
      await exitedPromise;
    },
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${options.name} ${exited} before it was ready:\n${tail}`);
    try {
      await fetch(options.url + options.readyPath, { signal: AbortSignal.timeout(1000) });
      return handle;
    } catch {
      await sleep(100);
    }
  }
  await handle.stop();
  throw new Error(`${options.name} did not answer on ${options.url} within ${READY_TIMEOUT_MS / 1000} s:\n${tail}`);
}
