import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { startTestServer, type TestServer } from '../helper.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
/** Instructions with their continuation lines joined. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

/**
 * The HEALTHCHECK's exec form, run here with this machine's node: the image runs exactly this. Spawned
 * asynchronously: the otpd it probes runs in this very process and must keep answering meanwhile.
 */
function healthcheck(port: number): Promise<number | null> {
  const line = instructions.find((instruction) => instruction.startsWith('HEALTHCHECK'))!;
  const exec = JSON.parse(line.slice(line.indexOf('CMD') + 3).trim()) as string[];
  assert.equal(exec[0], 'node');
  const child = spawn(process.execPath, exec.slice(1), { env: { ...process.env, OTPD_PORT: String(port) }, stdio: 'ignore', timeout: 15_000 });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('container image and compose file (Docker cannot run here: checked by reading and by running the health check)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('Dockerfile: two node:20-bookworm-slim stages, non-root, /data volume, and every COPY source exists and is not ignored', () => {
    assert.deepEqual(
      instructions.filter((i) => i.startsWith('FROM')),
      ['FROM node:20-bookworm-slim AS build', 'FROM node:20-bookworm-slim'],
    );
    const runStage = instructions.slice(instructions.lastIndexOf('FROM node:20-bookworm-slim'));
    assert.ok(runStage.includes('USER node'), 'the server must not run as root');
    assert.ok(runStage.includes('VOLUME /data'));
    assert.ok(runStage.some((i) => i.startsWith('ENV') && i.includes('NODE_ENV=production') && i.includes('OTPD_DATABASE=/data/otpd.db') && i.includes('OTPD_HOST=0.0.0.0')));
    assert.ok(instructions.some((i) => /npm ci/.test(i)) && instructions.some((i) => /npm run build/.test(i)) && instructions.some((i) => /npm prune --omit=dev/.test(i)));
    assert.ok(runStage.some((i) => i.startsWith('ENTRYPOINT ["node", "dist/cli/index.js"]')));
    assert.ok(existsSync(`${ROOT}src/cli/index.ts`), 'the entry point is built from src/cli/index.ts');
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const sources = instructions.filter((i) => i.startsWith('COPY') && !i.includes('--from')).flatMap((i) => i.split(/\s+/).slice(1, -1));
    assert.ok(sources.length >= 4);
    for (const source of sources) {
      assert.ok(existsSync(`${ROOT}${source}`), `COPY ${source}: no such file`);
      assert.ok(!ignored.includes(source), `COPY ${source}: excluded by .dockerignore`);
    }
    for (const heavy of ['node_modules', '.git', 'data', 'dist']) assert.ok(ignored.includes(heavy), `.dockerignore should exclude ${heavy}`);
  });

  it('HEALTHCHECK: exits 0 against a healthy otpd, 1 when nothing listens and 1 on a 503', async () => {
    assert.equal(await healthcheck(Number(new URL(server.url).port)), 0);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    assert.equal(await healthcheck(closedPort), 1);
    const unhealthy = createServer((_request, response) => response.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unavailable","detail":"store"}'));
    await new Promise<void>((resolve) => unhealthy.listen(0, '127.0.0.1', resolve));
    try {
      assert.equal(await healthcheck((unhealthy.address() as AddressInfo).port), 1);
    } finally {
      await new Promise((resolve) => unhealthy.close(resolve));
    }
  });

  it('compose.yaml: otpd on Redis, started once Redis is healthy; Redis keeps its data and never evicts keys', () => {
    const compose = parseYaml(readFileSync(`${ROOT}compose.yaml`, 'utf8')) as any;
    const otpd = compose.services.otpd;
    const redis = compose.services.redis;
    assert.equal(otpd.build, '.');
    assert.equal(otpd.environment.OTPD_REDIS_URL, 'redis://redis:6379');
    assert.match(otpd.environment.OTPD_SECRET, /^\$\{OTPD_SECRET:\?/, 'compose must refuse to start without OTPD_SECRET');
    assert.equal(otpd.depends_on.redis.condition, 'service_healthy');
    assert.deepEqual(redis.healthcheck.test, ['CMD', 'redis-cli', 'ping']);
    assert.ok(redis.command.includes('noeviction'));
    assert.ok(redis.command.includes('--appendonly'));
    assert.ok(redis.volumes.some((volume: string) => volume.endsWith(':/data')));
  });
});
