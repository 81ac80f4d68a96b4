/**
 * Enumeration timing (standards S3, decisions 23): on each keyless surface, the median latency of a request
 * about something that exists against one about something that does not, interleaved so drift and GC hit
 * both sides alike. A difference well under the loopback jitter means latency tells an attacker nothing.
 * The status/body half of S3 is test/security/S3.test.ts.
 *
 *   node --import tsx bench/enumeration.ts [ROUNDS=400]     (loopback only; a fresh server in a temp dir)
 */
import { performance } from 'node:perf_hooks';
import { startTestServer, type TestServer } from '../test/helper.js';

const rounds = Math.min(5_000, Math.max(20, Number(process.argv[2] ?? 400)));
const WARMUP = 30;

type Call = () => Promise<unknown>;

function quantile(sorted: number[], q: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[index]!;
}

async function timed(call: Call): Promise<number> {
  const start = performance.now();
  await call();
  return performance.now() - start;
}

async function measure(name: string, known: Call, unknown: Call): Promise<{ name: string; known: number; unknown: number; diff: number; p90k: number; p90u: number }> {
  for (let i = 0; i < WARMUP; i++) {
    await known();
    await unknown();
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which side goes first, so neither always follows the other.
    if (i % 2 === 0) {
      a.push(await timed(known));
      b.push(await timed(unknown));
    } else {
      b.push(await timed(unknown));
      a.push(await timed(known));
    }
  }
  a.sort((x, y) => x - y);
  b.sort((x, y) => x - y);
  const known50 = quantile(a, 0.5);
  const unknown50 = quantile(b, 0.5);
  return { name, known: known50, unknown: unknown50, diff: unknown50 - known50, p90k: quantile(a, 0.9), p90u: quantile(b, 0.9) };
}

async function main(): Promise<void> {
  const server: TestServer = await startTestServer();
  try {
    const services = server.server.services;
    // Unbounded for the run: the bench measures the dialects, not the limits in front of them.
    await services.apps.update('default', { rateLimits: { 'checks-per-ip': null, 'verifications-per-ip': null }, destinationCooldown: 0 });
    const noKey = { apiKey: null } as const;

    await server.request('POST', '/v1/otp/', { userId: 'bench-known', phoneNumber: '+12015550401' }, noKey);
    await server.request('PUT', '/api/otp/bench-first', { to: '+12015550402' });
    await server.request('PUT', '/api/otp/bench-second', { to: '+12015550402' });
    const { appKey } = await services.apps.credentialsOf(await services.apps.get('default'));
    await server.request('POST', `/otp/v1.0/appkeys/${appKey}/keys`, { userId: 'bench-known' }, noKey);
    const other = await services.apps.create('bench-other', {});
    const foreign = (await server.request('POST', '/v1/verifications', { to: '+12015550403' }, { apiKey: other.apiKey })).body.id as string;
    const own = (await server.request('POST', '/v1/verifications', { to: '+12015550404' })).body.id as string;
    const key = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

    const results = [
      await measure(
        '003 verify: known vs unknown userId',
        () => server.request('POST', '/v1/otp/verify', { userId: 'bench-known', otp: '000000' }, noKey),
        () => server.request('POST', '/v1/otp/verify', { userId: 'bench-unknown', otp: '000000' }, noKey),
      ),
      await measure(
        'hosted page: closed known id vs unknown id',
        () => server.request('GET', '/otp/default/bench-first', undefined, { apiKey: null, headers: { accept: 'application/json' } }),
        () => server.request('GET', '/otp/default/bench-never', undefined, { apiKey: null, headers: { accept: 'application/json' } }),
      ),
      await measure(
        '004 verification: known vs unknown userId',
        () => server.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/000000/verification?userId=bench-known&encodedKey=${key}`, undefined, noKey),
        () => server.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/000000/verification?userId=bench-unknown&encodedKey=${key}`, undefined, noKey),
      ),
      await measure(
        'native GET with app B\'s key: app A\'s id vs no such id',
        () => server.request('GET', `/v1/verifications/${own}`, undefined, { apiKey: other.apiKey }),
        () => server.request('GET', `/v1/verifications/${foreign}x`, undefined, { apiKey: other.apiKey }),
      ),
    ];

    console.log(`enumeration timing: ${rounds} interleaved rounds per pair, loopback, store ${server.server.store.backend}`);
    console.log('surface'.padEnd(66) + 'known p50   unknown p50   diff p50    known p90   unknown p90');
    for (const r of results) {
      const ms = (value: number) => `${value.toFixed(3)} ms`.padStart(10);
      console.log(r.name.padEnd(64) + ms(r.known) + '  ' + ms(r.unknown) + '   ' + `${r.diff >= 0 ? '+' : ''}${r.diff.toFixed(3)} ms`.padStart(10) + '  ' + ms(r.p90k) + '  ' + ms(r.p90u));
    }
  } finally {
    await server.close();
  }
}

await main();
