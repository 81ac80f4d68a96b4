// `npm test`: type-checks everything, then runs every test file with node's own runner.
// Node 20's `node --test` neither expands globs nor finds .ts files, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const filter = process.argv.slice(2);
const files = find(join(root, 'test')).filter((file) => filter.length === 0 || filter.some((f) => file.includes(f))).sort();

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (filter.length === 0) {
  console.log('typecheck: tsc -p tsconfig.test.json');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.test.json']);
  console.log('build: tsc -p tsconfig.json (tests that start the otpd command use dist/)');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  run(process.execPath, [join(root, 'scripts', 'copy-assets.mjs')]);
}
// Two test files at a time: most of their time is spent waiting on spawned servers, Redis and sockets,
// and each file's servers use their own ports, files and Redis key prefixes.
const concurrency = process.env.OTPD_TEST_CONCURRENCY ?? '2';
const env = filter.length === 0 ? { ...process.env, OTPD_TEST_DIST: '1' } : process.env;
run(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...files], env);
