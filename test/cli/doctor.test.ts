import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { benchUnavailable } from '../../src/cli/commands/bench.js';
import { runCli } from '../support/cli.js';

const root = mkdtempSync(join(tmpdir(), 'otpd-doctor-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SECRET = 'doctor-test-secret-0123456789abcdefghij';

interface Report {
  ok: boolean;
  findings: Array<{ check: string; status: 'ok' | 'warn' | 'fail'; detail: string }>;
}

async function doctor(env: Record<string, string>): Promise<{ code: number | null; report: Report; stderr: string }> {
  const result = (await runCli(['doctor', '--json'], { OTPD_SECRET: '', OTPD_API_KEY: '', OTPD_REDIS_URL: '', OTPD_CONFIG: '', NODE_ENV: '', ...env }));
  assert.doesNotThrow(() => JSON.parse(result.stdout), `not JSON: ${result.stdout}\n${result.stderr}`);
  return { code: result.code, report: JSON.parse(result.stdout) as Report, stderr: result.stderr };
}

function failures(report: Report): string[] {
  return report.findings.filter((f) => f.status === 'fail').map((f) => `${f.check}: ${f.detail}`);
}

describe('otpd doctor', () => {
  it('on a fresh machine: warns about what the first start will create, creates nothing, exits 0', async () => {
    const dir = join(root, 'fresh');
    mkdirSync(dir, { mode: 0o700 });
    const { code, report } = await doctor({ OTPD_DATABASE: join(dir, 'otpd.db') });
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.ok, true);
    assert.ok(report.findings.some((f) => f.check === 'secret' && f.status === 'warn' && /generates/.test(f.detail)));
    assert.ok(report.findings.some((f) => f.check === 'store' && f.status === 'warn' && /does not exist yet/.test(f.detail)));
    assert.deepEqual(readdirSync(dir), [], 'doctor must not create the database or the secret');
  });

  it('after a start: store, migrations and providers ok; a provider no one configured fails with exit 1', async () => {
    const dir = join(root, 'used');
    const env = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: SECRET };
    assert.equal((await runCli(['apps', 'create', 'shop'], env)).code, 0);
    const healthy = await doctor(env);
    assert.equal(healthy.code, 0, JSON.stringify(healthy.report));
    for (const check of ['configuration', 'store', 'migrations', 'providers', 'receipts']) {
      assert.ok(healthy.report.findings.some((f) => f.check === check && f.status === 'ok'), `${check} not ok: ${JSON.stringify(healthy.report)}`);
    }
    assert.equal((await runCli(['apps', 'update', 'shop', '--set', 'deliveryProvider=twilio-main'], env)).code, 0);
    const broken = await doctor(env);
    assert.equal(broken.code, 1);
    assert.equal(broken.report.ok, false);
    assert.match(failures(broken.report).join('\n'), /app "shop" sends through "twilio-main", which is not configured/);
  });

  it('fails on a secret file or data directory others can read or write, and says how to fix it', async () => {
    const dir = join(root, 'perms');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'secret'), 'a-development-secret-0123456789abcdefghij\n', { mode: 0o644 });
    chmodSync(join(dir, 'secret'), 0o644);
    const configFile = join(root, 'perms-otpd.json');
    writeFileSync(configFile, '{}\n');
    chmodSync(configFile, 0o666);
    chmodSync(dir, 0o777);
    const { code, report } = await doctor({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_CONFIG: configFile });
    chmodSync(dir, 0o700);
    assert.equal(code, 1);
    const text = failures(report).join('\n');
    assert.match(text, /secret: .*secret is 0644.*chmod 600/);
    assert.match(text, /data directory: .* is 0777.*chmod 700/);
    assert.match(text, /config file: .*perms-otpd\.json is 0666: others can change provider credentials/);
  });

  it('reports every invalid setting at once and a production app that would deliver nothing', async () => {
    const invalid = await doctor({ OTPD_DATABASE: join(root, 'invalid', 'otpd.db'), OTPD_PORT: 'eighty', OTPD_METRICS_TOKEN: 'short' });
    assert.equal(invalid.code, 1);
    const text = failures(invalid.report).join('\n');
    assert.match(text, /OTPD_PORT: must be an integer/);
    assert.match(text, /OTPD_METRICS_TOKEN: must be 16 to 200 printable characters/);
    assert.ok(!existsSync(join(root, 'invalid')));

    const dir = join(root, 'production');
    const env = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: SECRET, NODE_ENV: 'production', OTPD_HOST: '0.0.0.0' };
    assert.equal((await runCli(['apps', 'create', 'prod'], env)).code, 0);
    const production = await doctor(env);
    assert.equal(production.code, 1);
    assert.match(failures(production.report).join('\n'), /app "prod" sends through "log", which in production delivers nothing/);
    assert.ok(production.report.findings.some((f) => f.status === 'warn' && /OTPD_METRICS_TOKEN is not set/.test(f.detail)));
  });

  it('fails (bounded) when Redis does not answer, and passes against the running one', async () => {
    const dir = join(root, 'redis');
    const down = await doctor({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: SECRET, OTPD_REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(failures(down.report).join('\n'), /store: redis redis:\/\/127\.0\.0\.1:1/);
    const up = await doctor({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: SECRET, OTPD_REDIS_URL: 'redis://127.0.0.1:6379', OTPD_REDIS_PREFIX: `otpd-doctor-${process.pid}:` });
    assert.equal(up.code, 0, JSON.stringify(up.report));
    assert.ok(up.report.findings.some((f) => f.check === 'store' && f.status === 'ok'));
  });

  it('prints a readable report without --json', async () => {
    const result = (await runCli(['doctor'], { OTPD_DATABASE: join(root, 'plain', 'otpd.db'), OTPD_SECRET: SECRET, OTPD_PORT: '99999', OTPD_REDIS_URL: '', NODE_ENV: '' }));
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL {2}configuration {2}OTPD_PORT: /m);
    assert.match(result.stdout, /otpd doctor: 1 problem\(s\) found/);
  });
});

describe('otpd CLI ergonomics', () => {
  it('suggests the command meant when one is mistyped', async () => {
    const result = (await runCli(['verificaitons', 'get', 'x'], {}));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /unknown command 'verificaitons'/);
    assert.match(result.stderr, /Did you mean verifications\?/);
  });

  it('bench explains what is missing instead of failing obscurely', async () => {
    const bare = mkdtempSync(join(root, 'bare-'));
    assert.match(benchUnavailable(`${bare}/`) ?? '', /bench\/run\.ts is not part of this installation/);
    mkdirSync(join(bare, 'bench'));
    writeFileSync(join(bare, 'bench', 'run.ts'), '');
    writeFileSync(join(bare, 'package.json'), '{}');
    assert.match(benchUnavailable(`${bare}/`) ?? '', /tsx, a development dependency/);
  });
});
