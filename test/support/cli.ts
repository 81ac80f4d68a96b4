import { spawn, type ChildProcess } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;
/**
 * `npm test` builds dist/ first and says so with OTPD_TEST_DIST=1: the CLI then starts from the compiled
 * files (a second instead of several through tsx). A single test file run by hand uses the sources.
 */
const CLI = process.env.OTPD_TEST_DIST === '1' ? ['dist/cli/index.js'] : ['--import', 'tsx', 'src/cli/index.ts'];

/**
 * Runs `otpd ARGS` and resolves with its exit code and output. Asynchronous on purpose: a synchronous
 * spawn would freeze this process's event loop, and with it the group commit of any in-process test
 * server holding the SQLite write lock that the command is waiting for.
 */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Sends a signal and waits (bounded) for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `otpd serve ARGS` as a real process and waits (bounded) for it to print its URL. */
export function spawnServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...CLI, 'serve', ...args], { cwd: ROOT, env: { ...process.env, OTPD_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`otpd did not start within 30 s\nstdout: ${out}\nstderr: ${err}`));
    }, 30_000);
    const onData = () => {
      const match = /otpd listening on (http:\/\/[^\s]+)/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({
        url: match[1]!,
        child,
        stdout: () => out,
        stderr: () => err,
        async stop(signal = 'SIGTERM') {
          if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
          child.kill(signal);
          const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          const code = await exited;
          clearTimeout(killer);
          return code;
        },
      });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`otpd exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

/** A JSON request with a bearer key. */
export async function call(url: string, method: string, path: string, apiKey: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
