/**
 * Preloaded into a benchmarked server (`node --import ./bench/lib/profile-window.mjs …`, which cluster
 * workers inherit through execArgv) so `npm run bench -- --cpu-prof` profiles only the measured run, not
 * the process's whole life: `node --cpu-prof` would also take in start-up and the setup between rows (pool
 * creation racing the server for the database's write lock was 40% of one such profile).
 *
 * SIGUSR2 starts V8's sampling profiler through an in-process inspector session; the next SIGUSR2 stops it
 * and writes `PID-N.cpuprofile` (N counting from 1) into `BENCH_PROFILE_DIR`, by a rename, so a reader
 * never sees half a file. Plain JavaScript, so no TypeScript loader runs in the measured server.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let taken = 0;
  // One sample per 250 µs: a 5 s run at 100 connections gives ~20,000 samples of requests that take 20–200 µs.
  const post = (method, params = {}) =>
    new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 250 });
  process.on('SIGUSR2', () => {
    const starting = !running;
    running = starting;
    if (starting) {
      post('Profiler.start').catch((error) => process.stderr.write(`profile-window: could not start: ${error}\n`));
      return;
    }
    post('Profiler.stop').then(
      ({ profile }) => {
        taken += 1;
        const file = join(dir, `${process.pid}-${taken}.cpuprofile`);
        writeFileSync(`${file}.partial`, JSON.stringify(profile));
        renameSync(`${file}.partial`, file);
      },
      (error) => process.stderr.write(`profile-window: could not stop: ${error}\n`),
    );
  });
}
