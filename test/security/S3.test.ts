import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestResponse, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

/**
 * Standards S3 (ASVS 5 6.3.8), decisions 13: on the keyless surfaces, a known and an unknown user, id or
 * destination — and another app's id — get the same status and the same body. 200 calls each, compared
 * call by call (attempt counters advance alike on both sides, so the i-th answers must match). Latency
 * is compared by `bench/enumeration.ts` (decisions 23), not here.
 */
const CALLS = 200;

/** The parts of an answer an enumerating client can see, minus per-request noise (request ids, dates). */
function shape(response: TestResponse): unknown {
  const headers = ['content-type', 'retry-after', 'www-authenticate', 'content-security-policy', 'x-frame-options', 'cache-control'].map((name) => [name, response.headers.get(name)]);
  return { status: response.status, headers, body: response.body ?? response.text };
}

for (const backend of STORE_BACKENDS) {
  describe(`S3 on ${backend.name}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend.env());
      // The default app serves the keyless dialects. Per-IP check limits would end both series with the
      // same 429 after 300 calls; they are off here so every one of the 400 calls reaches the dialect.
      await server.server.services.apps.update('default', { rateLimits: { 'checks-per-ip': null }, destinationCooldown: 0 });
    });
    after(() => server.close());

    async function compare(name: string, known: () => Promise<TestResponse>, unknown: () => Promise<TestResponse>): Promise<void> {
      for (let i = 0; i < CALLS; i++) {
        const a = await known();
        const b = await unknown();
        assert.ok(a.status < 500, `${name} #${i}: ${a.status} ${a.text}`);
        assert.deepEqual(shape(b), shape(a), `${name}: call ${i + 1} differs`);
      }
    }

    it('S3: seed 003 verify answers a user with a pending code exactly like a user with none', async () => {
      const sent = await server.request('POST', '/v1/otp/', { userId: 's3-known', phoneNumber: '+12015550301' }, { apiKey: null });
      assert.equal(sent.status, 200, sent.text);
      const code = server.messages().find((m) => m.to === '+12015550301')?.code ?? (await waitForCode(server, '+12015550301'));
      const wrong = code === '000000' ? '111111' : '000000';
      await compare(
        '003 verify',
        () => server.request('POST', '/v1/otp/verify', { userId: 's3-known', otp: wrong }, { apiKey: null }),
        () => server.request('POST', '/v1/otp/verify', { userId: 's3-unknown', otp: wrong }, { apiKey: null }),
      );
    });

    it('S3: the hosted page answers a closed known id, an unknown id and another app\'s id alike', async () => {
      // Two 002 sends to one number: the second supersedes (cancels) the first, whose page is then closed.
      const to = '+12015550302';
      assert.equal((await server.request('PUT', '/api/otp/s3-first', { to })).status, 200);
      assert.equal((await server.request('PUT', '/api/otp/s3-second', { to })).status, 200);
      const { apiKey } = await server.server.services.apps.create('s3-other', {});
      assert.equal((await server.request('PUT', '/api/otp/s3-foreign', { to: '+12015550303' }, { apiKey })).status, 200);
      const accept = { apiKey: null, headers: { accept: 'application/json' } } as const;
      await compare(
        'hosted page',
        () => server.request('GET', '/otp/default/s3-first', undefined, accept),
        () => server.request('GET', '/otp/default/s3-never-created', undefined, accept),
      );
      await compare(
        'hosted page, another app\'s id',
        () => server.request('GET', '/otp/default/s3-first', undefined, accept),
        () => server.request('GET', '/otp/default/s3-foreign', undefined, accept),
      );
      const csrfless = { ...accept, headers: { ...accept.headers, 'content-type': 'application/json' } };
      await compare(
        'hosted page check',
        () => server.request('POST', '/otp/default/s3-first', { otp: '123456' }, csrfless),
        () => server.request('POST', '/otp/default/s3-never-created', { otp: '123456' }, csrfless),
      );
    });

    it('S3: seed 004 verification answers a known user exactly like an unknown one', async () => {
      const { appKey } = await server.server.services.apps.credentialsOf(await server.server.services.apps.get('default'));
      const issued = await server.request('POST', `/otp/v1.0/appkeys/${appKey}/keys`, { userId: 's3-known' }, { apiKey: null });
      assert.equal(issued.status, 200, issued.text);
      const encodedKey = issued.body.Key.encodedKey as string;
      const bogusKey = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
      await compare(
        '004 verification',
        () => server.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/000000/verification?userId=s3-known&encodedKey=${bogusKey}`, undefined, { apiKey: null }),
        () => server.request('GET', `/otp/v1.0/appkeys/${appKey}/codes/000000/verification?userId=s3-unknown&encodedKey=${bogusKey}`, undefined, { apiKey: null }),
      );
      assert.ok(encodedKey.length > 0);
    });
  });
}

async function waitForCode(server: TestServer, to: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const found = server.messages().find((m) => m.to === to);
    if (found) return found.code;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no message to ${to}`);
}
