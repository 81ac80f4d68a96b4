import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/metrics.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import { openStore } from '../../src/store/index.js';
import { isOtpdError } from '../../src/errors.js';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { spawnServer } from '../support/cli.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4, as far as otpd writes it: `name{a="b",…} value`. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of one series (0 when absent, as Prometheus reads a counter never incremented). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<Sample[]> {
  const response = await server.request('GET', '/metrics', undefined, { apiKey: null, headers });
  assert.equal(response.status, 200, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parse(response.text);
}

for (const backend of STORE_BACKENDS) describe(`GET /metrics (${backend.name})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(backend.env());
  });
  after(() => server.close());

  it('needs no API key and exposes process metrics, event-loop lag included', async () => {
    const samples = await scrape(server);
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes']) {
      assert.ok(samples.some((s) => s.name === name), `${name} missing`);
    }
  });

  it('counts verifications by status and channel, checks by outcome, resends, deliveries and limit hits', async () => {
    const before = await scrape(server);
    const a = await server.request('POST', '/v1/verifications', { to: '+15555550181' });
    const b = await server.request('POST', '/v1/verifications', { to: 'metrics@example.com' });
    const c = await server.request('POST', '/v1/verifications', { to: '+15555550182', maxAttempts: 1 });
    assert.deepEqual([a.status, b.status, c.status], [201, 201, 201]);
    // Sent before anything below ends them: the outbox drops the message of a verification that is over.
    await server.codeFor(b.body.id);
    await server.codeFor(c.body.id);
    assert.equal((await server.request('POST', `/v1/verifications/${a.body.id}/check`, { code: 'nope' })).body.valid, false);
    assert.equal((await server.request('POST', `/v1/verifications/${a.body.id}/check`, { code: await server.codeFor(a.body.id) })).body.valid, true);
    assert.equal((await server.request('POST', `/v1/verifications/${c.body.id}/check`, { code: 'nope' })).body.status, 'max_attempts_reached');
    assert.equal((await server.request('POST', `/v1/verifications/${b.body.id}/resend`)).status, 429);
    assert.equal((await server.request('POST', '/v1/verifications', { to: '+15555550181' })).status, 429, 'destination cooldown');
    assert.equal((await server.request('POST', `/v1/verifications/${b.body.id}/cancel`)).status, 200);
    await server.server.services.drain();

    const after = await scrape(server);
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    assert.equal(delta('otpd_verifications_total', { status: 'pending', channel: 'sms' }), 2);
    assert.equal(delta('otpd_verifications_total', { status: 'pending', channel: 'email' }), 1);
    assert.equal(delta('otpd_verifications_total', { status: 'approved', channel: 'sms' }), 1);
    assert.equal(delta('otpd_verifications_total', { status: 'max_attempts_reached', channel: 'sms' }), 1);
    assert.equal(delta('otpd_verifications_total', { status: 'canceled', channel: 'email' }), 1);
    assert.equal(delta('otpd_verification_checks_total', { outcome: 'wrong' }), 2);
    assert.equal(delta('otpd_verification_checks_total', { outcome: 'approved', channel: 'sms' }), 1);
    assert.equal(delta('otpd_rate_limit_hits_total', { limit: 'resend_cooldown' }), 1);
    assert.equal(delta('otpd_rate_limit_hits_total', { limit: 'destination_cooldown' }), 1);
    assert.equal(delta('otpd_deliveries_total', { provider: 'dev-outbox' }), 3);
    assert.equal(delta('otpd_provider_latency_seconds_count', { provider: 'dev-outbox' }), 3);
    assert.ok(delta('otpd_provider_latency_seconds_sum', { provider: 'dev-outbox' }) > 0);
    // Four: the store refuses the cooldown's create in the same step that would have inserted it.
    assert.equal(delta('otpd_store_operation_duration_seconds_count', { backend: backend.name, operation: 'createVerification' }), 4);
    assert.equal(delta('otpd_store_operation_duration_seconds_count', { operation: 'checkVerification' }), 3);
  });

  it('labels HTTP requests by route pattern and status, never by raw URL', async () => {
    const created = await server.request('POST', '/v1/verifications', { to: '+15555550183' });
    await server.request('GET', `/v1/verifications/${created.body.id}`);
    await server.request('GET', '/v1/verifications/ve_doesnotexist');
    await server.request('GET', '/no/such/route/123', undefined, { apiKey: null });
    const samples = await scrape(server);
    assert.ok(value(samples, 'otpd_http_requests_total', { method: 'GET', route: '/v1/verifications/:id', status: '200' }) >= 1);
    assert.ok(value(samples, 'otpd_http_requests_total', { method: 'GET', route: '/v1/verifications/:id', status: '404' }) >= 1);
    assert.ok(value(samples, 'otpd_http_requests_total', { route: '(unmatched)', status: '404' }) >= 1);
    assert.ok(value(samples, 'otpd_http_request_duration_seconds_count', { route: '/v1/verifications' }) >= 1);
    for (const sample of samples) assert.doesNotMatch(sample.labels.route ?? '', /ve_|123/, `raw URL in a label: ${JSON.stringify(sample)}`);
  });
});

describe('docs/grafana-dashboard.json and docs/observability.md', () => {
  it('query and list only series otpd really exposes, and the docs name every otpd_ series', async () => {
    const server = await startTestServer();
    try {
      const created = await server.request('POST', '/v1/verifications', { to: '+15555550184' });
      await server.request('POST', `/v1/verifications/${created.body.id}/check`, { code: 'nope' });
      await server.codeFor(created.body.id);
      await server.server.services.drain();
      const text = (await server.request('GET', '/metrics', undefined, { apiKey: null })).text;
      const families = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((match) => match[1]!));
      const exposed = (name: string) => families.has(name) || families.has(name.replace(/_(bucket|sum|count)$/, ''));

      const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));
      const expressions: string[] = dashboard.panels.flatMap((panel: { targets?: Array<{ expr: string }> }) => (panel.targets ?? []).map((target) => target.expr));
      assert.ok(expressions.length >= 15);
      const queried = new Set(expressions.flatMap((expr) => [...expr.matchAll(/\b((?:otpd|nodejs|process)_[a-z0-9_]+)\b/g)].map((match) => match[1]!)));
      for (const name of queried) assert.ok(exposed(name), `the dashboard queries ${name}, which /metrics does not expose`);

      const docs = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
      for (const name of families) if (name.startsWith('otpd_')) assert.ok(docs.includes(`\`${name}\``), `docs/observability.md does not describe ${name}`);
    } finally {
      await server.close();
    }
  });
});

describe('GET /metrics with OTPD_METRICS_TOKEN', () => {
  const token = 'metrics-token-0123456789abcdef';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ OTPD_METRICS_TOKEN: token });
  });
  after(() => server.close());

  it('requires the bearer token, and an API key is no substitute', async () => {
    const none = await server.request('GET', '/metrics', undefined, { apiKey: null });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(none.body.type, 'urn:otpd:problem:unauthorized');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await server.request('GET', '/metrics', undefined, { apiKey: token + 'x' })).status, 401);
    assert.equal((await server.request('GET', '/metrics', undefined)).status, 401, 'the API key opened /metrics');
    const good = await server.request('GET', '/metrics', undefined, { apiKey: token });
    assert.equal(good.status, 200);
    assert.match(good.text, /otpd_http_requests_total/);
  });

  it('documents the token in /openapi.json', async () => {
    const document = (await server.request('GET', '/openapi.json', undefined, { apiKey: null })).body;
    assert.deepEqual(document.paths['/metrics'].get.security, [{ metricsToken: [] }]);
    assert.ok(document.paths['/metrics'].get.responses['401']);
  });
});

describe('store proxy', () => {
  it('times every call of a real store and counts the ones that fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-metrics-'));
    const metrics = new Metrics();
    const store = instrumentStore(await openStore({ backend: 'sqlite', path: join(dir, 'otpd.db'), routingKey: Buffer.alloc(32, 1) }), metrics);
    try {
      assert.equal(store.backend, 'sqlite');
      const app = { id: 'app_metrics', name: 'metrics', settings: {} as never, createdAt: 1, updatedAt: 1 };
      await store.insertApp(app);
      await assert.rejects(store.insertApp(app), (error) => isOtpdError(error, 'APP_EXISTS'));
      assert.equal((await store.getAppByName('metrics'))?.id, 'app_metrics');
      const samples = parse(await metrics.registry.metrics());
      assert.equal(value(samples, 'otpd_store_operation_duration_seconds_count', { backend: 'sqlite', operation: 'insertApp' }), 2);
      assert.equal(value(samples, 'otpd_store_errors_total', { backend: 'sqlite', operation: 'insertApp' }), 1);
      assert.equal(value(samples, 'otpd_store_operation_duration_seconds_count', { operation: 'getAppByName' }), 1);
      assert.equal(value(samples, 'otpd_store_errors_total', { operation: 'getAppByName' }), 0);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** One GET on a connection of its own, so the cluster's round-robin hands it to the next worker. */
function getOnNewConnection(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('otpd serve --workers 2', () => {
  it('answers /metrics on any worker with the sum over all workers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-metrics-cluster-'));
    const server = await spawnServer(
      { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: 'cluster-metrics-secret-0123456789abcdef', OTPD_API_KEY: 'otpd_cluster_metrics_key_0123', OTPD_LOG_LEVEL: 'silent' },
      ['--workers', '2'],
    );
    try {
      // Worker 0 prints the banner once it listens; wait (bounded) until both workers answer health.
      const deadline = Date.now() + 20_000;
      const requests = 20;
      for (let i = 0; i < requests; i++) {
        let status = 0;
        while (status !== 200 && Date.now() < deadline) status = await getOnNewConnection(`${server.url}/healthz`).catch(() => 0);
        assert.equal(status, 200, 'healthz');
      }
      // Whichever worker answers the scrapes, both report the same total: every worker's count summed.
      for (let i = 0; i < 2; i++) {
        const text = await new Promise<string>((resolve, reject) => {
          const req = httpRequest(`${server.url}/metrics`, { agent: false, timeout: 10_000 }, (response) => {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`${response.statusCode}: ${body}`))));
          });
          req.on('timeout', () => req.destroy(new Error('metrics timeout')));
          req.on('error', reject);
          req.end();
        });
        assert.equal(value(parse(text), 'otpd_http_requests_total', { route: '/healthz', status: '200' }), requests);
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
