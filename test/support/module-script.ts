import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * A module of the shipped files when `npm test` built dist/ (a worker thread's .js file must be there
 * too), else of the sources: `src/core/jws` is `dist/core/jws.js` or `src/core/jws.ts`.
 */
export function moduleUnderTest(path: string): string {
  return process.env.OTPD_TEST_DIST === '1' ? `${ROOT}dist/${path}.js` : `${ROOT}src/${path}.ts`;
}

/**
 * Runs `script` (an ES module's text, which imports through `moduleUnderTest`) in a process of its own and
 * returns what it printed, asserting that it exited by itself with code 0 within 30 s: for proving that a
 * thread never keeps a process alive. Killed after 30 s, it fails the test.
 */
export async function runScriptToExit(script: string): Promise<string> {
  const fromSources = process.env.OTPD_TEST_DIST !== '1';
  const child = spawn(process.execPath, [...(fromSources ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal])));
  clearTimeout(killer);
  assert.equal(signal, null, `killed after 30 s: the process did not exit by itself\n${output}`);
  assert.equal(code, 0, output);
  return output.trim();
}
