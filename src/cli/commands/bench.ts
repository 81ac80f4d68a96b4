import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/** The repository root: three levels up from both src/cli/commands/ and dist/cli/commands/. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RUNNER = 'bench/run.ts';

/** Why the benchmarks cannot run here, or undefined when they can. */
export function benchUnavailable(root = ROOT): string | undefined {
  if (!existsSync(`${root}${RUNNER}`)) {
    return `${RUNNER} is not part of this installation: the benchmarks ship with the source repository, not the package. Clone it, run \`npm ci\`, then \`npm run bench\` (or \`otpd bench\` from there).`;
  }
  try {
    createRequire(`${root}package.json`).resolve('tsx');
  } catch {
    return 'the benchmarks run TypeScript through tsx, a development dependency that is not installed here: run `npm ci` (without --omit=dev) in the repository, then try again.';
  }
  return undefined;
}

/**
 * `otpd bench [ARGS…]`: the same as `npm run bench -- ARGS…` (bench/run.ts through tsx, from the repository
 * root). Exits with the benchmark's own exit code; explains instead when the benchmarks are not here.
 */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks (npm run bench) when this is a source checkout; arguments go to bench/run.ts')
    .argument('[args...]', 'passed to bench/run.ts')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (args: string[]) => {
      const reason = benchUnavailable();
      if (reason) {
        process.stderr.write(`otpd bench: ${reason}\n`);
        process.exit(1);
      }
      const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...args], { cwd: ROOT, stdio: 'inherit' });
      const code = await new Promise<number>((resolve) => {
        child.once('error', (error) => {
          process.stderr.write(`otpd bench: could not start node: ${error.message}\n`);
          resolve(1);
        });
        // A benchmark killed by a signal exits the way a shell reports it: 128 + the signal's number.
        child.once('exit', (status, signal) => resolve(status ?? 128 + (signal ? constants.signals[signal] : 0)));
      });
      process.exit(code);
    });
}
