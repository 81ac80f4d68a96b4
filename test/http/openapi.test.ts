import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ERRORS } from '../../src/errors.js';
import { registeredRoutes } from '../../src/http/openapi.js';
import { problemType } from '../../src/http/problem.js';
import { startTestServer, type TestServer } from '../helper.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** `/v1/verifications/:id/check` → `/v1/verifications/{id}/check`; a regexp after a parameter is dropped. */
function openApiPath(url: string): string {
  return url.replace(/:(\w+)(\([^/]*\))?/g, '{$1}').replace(/\*$/, '{*}');
}

function resolvePointer(document: Json, ref: string): Json {
  assert.ok(ref.startsWith('#/'), `only local refs are expected, got ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node, part) => (node === undefined ? undefined : node[part]), document);
}

function* walk(node: Json, path = '#'): Generator<[string, Json]> {
  if (node === null || typeof node !== 'object') return;
  yield [path, node];
  for (const [key, value] of Object.entries(node)) yield* walk(value, `${path}/${key}`);
}

function operations(document: Json): Array<{ path: string; method: string; operation: Json }> {
  return Object.entries(document.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ path, method, operation })),
  );
}

describe('OpenAPI document and docs page', () => {
  let server: TestServer;
  let document: Json;

  before(async () => {
    server = await startTestServer();
    const response = await server.request('GET', '/openapi.json', undefined, { apiKey: null });
    assert.equal(response.status, 200, response.text);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    document = response.body;
  });
  after(() => server.close());

  it('is an OpenAPI 3.1 document with info, servers, paths and components', () => {
    assert.equal(document.openapi, '3.1.0');
    assert.equal(document.info.title, 'otpd');
    assert.match(document.info.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(document.servers, [{ url: server.url }]);
    assert.equal(typeof document.paths, 'object');
    assert.ok(Object.keys(document.paths).length > 0);
    assert.equal(typeof document.components, 'object');
    assert.ok(document.components.schemas.Problem, 'components.schemas.Problem');
    for (const name of ['apiKey', 'apiKeyHeader', 'metricsToken']) assert.ok(document.components.securitySchemes[name], name);
  });

  it('documents every registered route (dialects added later included), hidden and HEAD routes aside', () => {
    const routes = registeredRoutes(server.server.app).filter((route) => route.method !== 'HEAD' && !route.hidden);
    assert.ok(routes.length >= 8, `only ${routes.length} routes recorded`);
    const missing = routes.filter((route) => !document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()]);
    assert.deepEqual(missing, [], 'routes missing from /openapi.json');
    for (const url of ['/v1/verifications', '/v1/verifications/{id}/check', '/healthz', '/metrics', '/openapi.json']) assert.ok(document.paths[url], url);
  });

  it('is structurally valid: responses described, path parameters declared, refs resolve, schemas are JSON Schema 2020-12', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const operationIds = new Set<string>();
    for (const { path, method, operation } of operations(document)) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(operation.responses && Object.keys(operation.responses).length > 0, `${where}: no responses`);
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        assert.match(status, /^([1-5](\d\d|XX)|default)$/, `${where}: status key ${status}`);
        assert.equal(typeof response.description, 'string', `${where} ${status}: description`);
        for (const [mediaType, media] of Object.entries((response.content ?? {}) as Record<string, Json>)) {
          assert.match(mediaType, /^[\w.+-]+\/[\w.+*-]+/, `${where} ${status}: media type ${mediaType}`);
          if (media.schema) assert.ok(ajv.validateSchema(media.schema), `${where} ${status} ${mediaType}: ${ajv.errorsText(ajv.errors)}`);
        }
      }
      const declared = new Set((operation.parameters ?? []).filter((p: Json) => p.in === 'path').map((p: Json) => p.name));
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) assert.ok(declared.has(name), `${where}: path parameter ${name} not declared`);
      for (const parameter of operation.parameters ?? []) {
        assert.ok(['query', 'header', 'path', 'cookie'].includes(parameter.in), `${where}: parameter ${parameter.name} in ${parameter.in}`);
        if (parameter.in === 'path') assert.equal(parameter.required, true, `${where}: path parameter ${parameter.name} must be required`);
      }
      if (operation.operationId) {
        assert.ok(!operationIds.has(operation.operationId), `duplicate operationId ${operation.operationId}`);
        operationIds.add(operation.operationId);
      }
      for (const requirement of operation.security ?? []) {
        for (const scheme of Object.keys(requirement)) assert.ok(document.components.securitySchemes[scheme], `${where}: unknown security scheme ${scheme}`);
      }
    }
    for (const [name, schema] of Object.entries(document.components.schemas as Record<string, Json>)) {
      assert.ok(ajv.validateSchema(schema), `components.schemas.${name}: ${ajv.errorsText(ajv.errors)}`);
    }
    for (const [path, node] of walk(document)) {
      if (typeof node.$ref === 'string') assert.notEqual(resolvePointer(document, node.$ref), undefined, `${path}: $ref ${node.$ref} does not resolve`);
    }
  });

  it('gives every native operation a tag, a summary, the API-key security and its errors with examples', () => {
    const native = operations(document).filter(({ path }) => /^\/v1\/(verifications|factors|subjects)(\/|$)/.test(path));
    assert.ok(native.length >= 6);
    const knownTypes = new Map(Object.entries(ERRORS).map(([code, definition]) => [problemType(code), definition.status]));
    for (const { path, method, operation } of native) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(operation.tags?.length > 0, `${where}: tags`);
      assert.deepEqual(operation.security, [{ apiKey: [] }, { apiKeyHeader: [] }], `${where}: security`);
      for (const status of ['401', '403', '500', '503']) assert.ok(operation.responses[status], `${where}: ${status} undocumented`);
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        if (Number(status) < 400) continue;
        const media = response.content?.['application/problem+json'];
        assert.ok(media, `${where} ${status}: application/problem+json`);
        const examples = Object.values((media.examples ?? {}) as Record<string, Json>);
        assert.ok(examples.length > 0, `${where} ${status}: examples`);
        for (const example of examples) {
          assert.equal(example.value.status, Number(status), `${where} ${status}: example status`);
          assert.equal(knownTypes.get(example.value.type), Number(status), `${where} ${status}: example type ${example.value.type}`);
          assert.equal(typeof example.value.title, 'string');
          assert.equal(typeof example.value.detail, 'string');
        }
      }
    }
    const verificationOps = native.filter(({ path }) => path.startsWith('/v1/verifications'));
    assert.equal(verificationOps.length, 6);
    for (const { path, method, operation } of verificationOps) assert.ok(operation.summary, `${method} ${path}: summary`);
  });

  it('gives every dialect, hosted-page and callback operation a tag, a summary and documented responses with examples', () => {
    const dialect = operations(document).filter(({ operation }) => /^(dialect |hosted page|provider callbacks)/.test(operation.tags?.[0] ?? ''));
    // 8 for seeds 001/003, 5 for seed 000, 4 for seed 004 (two version prefixes), 5 for seed 002, 4 hosted page, 2 callbacks.
    assert.ok(dialect.length >= 28, `only ${dialect.length} dialect operations`);
    for (const tag of ['dialect 000', 'dialect 001/003', 'dialect 002', 'dialect 004', 'hosted page']) {
      assert.ok(dialect.some(({ operation }) => operation.tags[0] === tag), `no operation tagged ${tag}`);
    }
    for (const { path, method, operation } of dialect) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.equal(typeof operation.summary, 'string', `${where}: summary`);
      assert.ok(operation.summary.length > 0, `${where}: summary`);
      if (operation.tags[0].startsWith('dialect ')) {
        assert.match(operation.description ?? '', /Seed \d{3}|seed \d{3}/, `${where}: description names the seed`);
        assert.match(operation.description ?? '', /docs\/dialects\.md/, `${where}: description links docs/dialects.md`);
      }
      const documented = Object.entries(operation.responses as Record<string, Json>).filter(([, response]) =>
        Object.values((response.content ?? {}) as Record<string, Json>).some((media) => media.example !== undefined || Object.keys(media.examples ?? {}).length > 0),
      );
      assert.ok(documented.length > 0, `${where}: no response with an example`);
    }
    // The dialects' own envelopes, not problem documents.
    const put = document.paths['/api/otp/{id}'].put;
    assert.equal(put.responses['200'].content['application/json'].examples.sent.value.status, 'success');
    assert.ok(put.requestBody.content['multipart/form-data'], 'seed 002 PUT takes multipart form-data');
    const nhn = document.paths['/otp/v1.0/appkeys/{appKey}/codes/{code}/verification'].get;
    assert.equal(nhn.responses['200'].content['application/json'].examples.wrong.value.header.resultCode, -101);
    assert.deepEqual(
      (nhn.parameters as Json[]).filter((p) => p.in === 'query').map((p) => p.name).sort(),
      ['encodedKey', 'userId'],
    );
  });

  it('documents dialect bodies without enforcing them: a request the schema would not describe is answered by the dialect as before', async () => {
    // A seed-003 body of the wrong types gets the dialect's own 400 envelope, not a fastify validation error.
    const response = await server.request('POST', '/v1/otp/verify', { userId: 12, otp: ['x'] }, { apiKey: null });
    assert.equal(response.status, 400, response.text);
    assert.equal(response.body.success, false);
    assert.equal(typeof response.body.message, 'string');
  });

  it('matches what the server really answers: each error status is documented and its body fits the Problem schema', async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const validateProblem = ajv.compile(document.components.schemas.Problem);
    const created = await server.request('POST', '/v1/verifications', { to: '+15555550170' });
    assert.equal(created.status, 201);
    const canceled = await server.request('POST', `/v1/verifications/${created.body.id}/cancel`);
    assert.equal(canceled.status, 200);
    const cases: Array<[string, string, string, unknown, { apiKey?: string | null }?]> = [
      ['POST', '/v1/verifications', '/v1/verifications', { to: 'nobody' }],
      ['POST', '/v1/verifications', '/v1/verifications', { to: '+15555550171' }, { apiKey: null }],
      ['GET', '/v1/verifications/ve_unknown', '/v1/verifications/{id}', undefined],
      ['POST', `/v1/verifications/${created.body.id}/cancel`, '/v1/verifications/{id}/cancel', undefined],
      ['POST', `/v1/verifications/${created.body.id}/resend`, '/v1/verifications/{id}/resend', undefined],
      ['POST', '/v1/verifications/check', '/v1/verifications/check', { to: '+15555550172', code: '123456' }],
    ];
    for (const [method, url, documented, body, options] of cases) {
      const response = await server.request(method, url, body, options);
      assert.ok(response.status >= 400, `${method} ${url}: ${response.status}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const operation = document.paths[documented][method.toLowerCase()];
      assert.ok(operation.responses[String(response.status)], `${method} ${documented}: answered ${response.status}, which is undocumented`);
      assert.ok(validateProblem(response.body), `${method} ${url}: ${ajv.errorsText(validateProblem.errors)}`);
    }
  });

  it('serves the docs page and every asset it loads from otpd itself, under a strict CSP', async () => {
    const page = await fetch(`${server.url}/docs/`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(page.status, 200);
    const html = await page.text();
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /upgrade-insecure-requests/);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    assert.ok(assets.some((asset) => asset.endsWith('swagger-ui-bundle.js')), html);
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^(https?:)?\/\//, `the page loads ${asset} from elsewhere`);
      const response = await fetch(new URL(asset, `${server.url}/docs/`), { signal: AbortSignal.timeout(10_000) });
      assert.equal(response.status, 200, asset);
      await response.arrayBuffer();
    }
    const initializer = await (await fetch(`${server.url}/docs/static/swagger-initializer.js`, { signal: AbortSignal.timeout(10_000) })).text();
    assert.match(initializer, /validatorUrl: null/, 'the online validator would be contacted');
    const uiDocument = await server.request('GET', '/docs/json', undefined, { apiKey: null });
    assert.deepEqual(uiDocument.body, document);
    // swagger-ui's own redirect for this path would point at itself when a query string follows.
    for (const path of ['/docs/static/index.html', '/docs/static/index.html?url=x']) {
      const redirect = await fetch(`${server.url}${path}`, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      assert.equal(redirect.status, 302, path);
      assert.equal(redirect.headers.get('location'), '/docs/', path);
      await redirect.arrayBuffer();
    }
  });
});
