/**
 * Counts and times every SQL statement better-sqlite3 runs in this process, and prints the table at exit:
 * how many times each statement ran, its total and mean time. Counts are exact where CPU numbers on a shared
 * machine are not, so they show what a change removed. A preload for any benchmark that runs otpd in-process:
 * `node --import tsx --import ./bench/lib/sqlite-statements.ts bench/http-micro.ts create 20000 sqlite`.
 * Timing each call adds ~1 µs to it; compare the counts and the means, not the CPU the run prints.
 */
import Database from 'better-sqlite3';

interface Tally {
  calls: number;
  nanos: bigint;
}

const tallies = new Map<string, Tally>();

function timed<A extends unknown[], R>(label: string, call: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    const start = process.hrtime.bigint();
    try {
      return call(...args);
    } finally {
      const tally = tallies.get(label) ?? { calls: 0, nanos: 0n };
      tally.calls += 1;
      tally.nanos += process.hrtime.bigint() - start;
      tallies.set(label, tally);
    }
  };
}

const prototype = Database.prototype as unknown as { prepare(this: Database.Database, sql: string): Database.Statement };
const prepare = prototype.prepare;
prototype.prepare = function (this: Database.Database, sql: string): Database.Statement {
  const statement = prepare.call(this, sql);
  const text = sql.replace(/\s+/g, ' ').trim().slice(0, 110);
  const methods = statement as unknown as Record<'run' | 'get' | 'all', (...args: unknown[]) => unknown>;
  for (const method of ['run', 'get', 'all'] as const) methods[method] = timed(`${method} ${text}`, methods[method].bind(statement));
  return statement;
};

process.on('exit', () => {
  const rows = [...tallies].sort((a, b) => Number(b[1].nanos - a[1].nanos)).slice(0, 30);
  console.log('\n   calls   total ms   mean µs  statement');
  for (const [label, { calls, nanos }] of rows) {
    const ms = Number(nanos) / 1e6;
    console.log(`${String(calls).padStart(8)} ${ms.toFixed(0).padStart(10)} ${((ms * 1000) / calls).toFixed(1).padStart(9)}  ${label}`);
  }
});
