import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TOTP } from 'otpauth';
import { OtpdClient, OtpdConnectionError, OtpdProblemError, parseRetryAfter } from '../../packages/client/src/index.js';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

/** A loopback HTTP server that answers from a script, to drive the client's retry rules precisely. */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

async function scriptedServer(answer: (request: IncomingMessage, index: number) => Answer): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((request, response) => {
    requests.push(request);
    request.resume();
    request.on('end', () => {
      const { status, headers, body } = answer(request, requests.length - 1);
      response.writeHead(status, headers).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

for (const backend of STORE_BACKENDS) describe(`@otpd/client against a real otpd (${backend.name})`, () => {
  let server: TestServer;
  let client: OtpdClient;
  before(async () => {
    server = await startTestServer(backend.env());
    client = new OtpdClient({ baseUrl: server.url, apiKey: server.apiKey });
  });
  after(() => server.close());

  it('creates, gets and checks verifications, by id and by destination', async () => {
    const created = await client.verifications.create({ to: '+15555550201', metadata: { plan: 'pro' } });
    assert.match(created.id, /^ve_/);
    assert.equal(created.status, 'pending');
    assert.deepEqual(created.metadata, { plan: 'pro' });
    assert.equal((await client.verifications.get(created.id)).id, created.id);
    const code = await server.codeFor(created.id);
    const wrong = await client.verifications.check(created.id, code === '000000' ? '111111' : '000000');
    assert.equal(wrong.valid, false);
    assert.equal(wrong.attempts, 1);
    const right = await client.verifications.check(created.id, code);
    assert.equal(right.valid, true);
    assert.equal(right.status, 'approved');

    const email = await client.verifications.create({ to: 'client@example.com' });
    assert.equal(email.channel, 'email');
    const byDestination = await client.verifications.checkByDestination('client@example.com', await server.codeFor(email.id));
    assert.equal(byDestination.valid, true);
    assert.equal(byDestination.id, email.id);
  });

  it('throws problems as OtpdProblemError with type, title, status, detail, field errors, extensions and request id', async () => {
    const invalid = await client.verifications.create({ to: 'nobody' }).then(
      () => assert.fail('accepted'),
      (error: unknown) => error,
    );
    assert.ok(invalid instanceof OtpdProblemError);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.type, 'urn:otpd:problem:validation');
    assert.equal(invalid.code, 'validation');
    assert.equal(invalid.title, 'Invalid request');
    assert.equal(invalid.errors[0]?.field, 'to');
    assert.match(invalid.requestId ?? '', /^req_/);

    const created = await client.verifications.create({ to: '+15555550202' });
    await client.verifications.cancel(created.id);
    await assert.rejects(client.verifications.cancel(created.id), (error: unknown) => {
      assert.ok(error instanceof OtpdProblemError);
      assert.equal(error.status, 409);
      assert.equal(error.code, 'not-pending');
      assert.equal(error.problem.verificationStatus, 'canceled');
      return true;
    });
    await assert.rejects(client.verifications.get('ve_unknown'), (error: unknown) => error instanceof OtpdProblemError && error.status === 404);
    const stranger = new OtpdClient({ baseUrl: server.url, apiKey: 'otpd_not_a_key_0000000000' });
    await assert.rejects(stranger.verifications.get(created.id), (error: unknown) => error instanceof OtpdProblemError && error.status === 401 && error.code === 'unauthorized');
  });

  it('waits out a short Retry-After on 429 and succeeds; throws at once when Retry-After is longer than allowed', async () => {
    await server.server.services.apps.update('default', { resendCooldown: 1 });
    try {
      const created = await client.verifications.create({ to: '+15555550203' });
      const started = Date.now();
      const resent = await client.verifications.resend(created.id);
      assert.equal(resent.sends, 2);
      assert.ok(Date.now() - started >= 500, 'the client did not wait for Retry-After');

      const impatient = new OtpdClient({ baseUrl: server.url, apiKey: server.apiKey, maxRetryDelayMs: 100 });
      const before = Date.now();
      await assert.rejects(impatient.verifications.resend(created.id), (error: unknown) => {
        assert.ok(error instanceof OtpdProblemError);
        assert.equal(error.status, 429);
        assert.equal(error.code, 'resend-cooldown');
        assert.equal(error.retryAfter, 1);
        return true;
      });
      assert.ok(Date.now() - before < 900, 'it waited although Retry-After exceeded maxRetryDelayMs');
    } finally {
      await server.server.services.apps.update('default', { resendCooldown: 30 });
    }
  });

  it('reuses one Idempotency-Key across its own retries, so a lost answer never sends a second code', async () => {
    const keys: string[] = [];
    let calls = 0;
    const lossy = new OtpdClient({
      baseUrl: server.url,
      apiKey: server.apiKey,
      retryBaseDelayMs: 10,
      // The first answer is lost after the server handled the request (a reset connection, say).
      fetch: async (input, init) => {
        calls++;
        keys.push(new Headers(init?.headers).get('idempotency-key') ?? '');
        const response = await fetch(input, init);
        if (calls === 1) {
          await response.arrayBuffer();
          throw new TypeError('fetch failed: socket hang up');
        }
        return response;
      },
    });
    const created = await lossy.verifications.create({ to: '+15555550204' });
    assert.equal(calls, 2);
    assert.match(keys[0]!, /^[0-9a-f-]{36}$/);
    assert.equal(keys[1], keys[0]);
    await server.codeFor(created.id);
    await server.server.services.drain();
    assert.equal(server.messages().filter((m) => m.to === '+15555550204').length, 1, 'a second code was sent');

    const again = await client.verifications.create({ to: '+15555550205' }, { idempotencyKey: 'order-4711' });
    const replay = await client.verifications.create({ to: '+15555550205' }, { idempotencyKey: 'order-4711' });
    assert.equal(replay.id, again.id);
  });

  it('does not repeat a check whose answer was lost (a wrong code counts)', async () => {
    let calls = 0;
    const lossy = new OtpdClient({
      baseUrl: server.url,
      apiKey: server.apiKey,
      fetch: async () => {
        calls++;
        throw new TypeError('fetch failed: connection reset');
      },
    });
    await assert.rejects(lossy.verifications.check('ve_x', '123456'), (error: unknown) => error instanceof OtpdConnectionError && /connection reset/.test(error.message));
    assert.equal(calls, 1);
  });

  it('enrols a TOTP factor, verifies it, issues recovery codes and deletes it', async () => {
    const enrolment = await client.factors.enrol({ type: 'totp', account: 'client@example.com' });
    assert.equal(enrolment.status, 'unverified');
    assert.match(enrolment.uri, /^otpauth:\/\/totp\//);
    const totp = new TOTP({ secret: enrolment.secret, digits: enrolment.digits, period: enrolment.period ?? 30, algorithm: enrolment.algorithm });
    const verified = await client.factors.verify(enrolment.id, totp.generate());
    assert.equal(verified.valid, true);
    assert.equal(verified.status, 'verified');
    const codes = await client.factors.issueRecoveryCodes(enrolment.id);
    assert.ok(codes.codes.length > 0);
    assert.equal((await client.factors.get(enrolment.id)).recoveryCodesRemaining, codes.codes.length);
    await client.factors.delete(enrolment.id);
    await assert.rejects(client.factors.get(enrolment.id), (error: unknown) => error instanceof OtpdProblemError && error.status === 404);
  });

  it('puts, gets and deletes subjects', async () => {
    const created = await client.subjects.put('user-42', { phone: '+15555550206', email: 'user42@example.com' });
    assert.equal(created.id, 'user-42');
    assert.equal((await client.subjects.get('user-42')).email, 'user42@example.com');
    assert.equal((await client.subjects.put('user-42', { phone: null, email: 'new42@example.com' })).phone, null);
    await client.subjects.delete('user-42');
    await assert.rejects(client.subjects.get('user-42'), (error: unknown) => error instanceof OtpdProblemError && error.status === 404);
  });
});

describe('@otpd/client retry rules', () => {
  it('retries 503 at most maxRetries times, then throws the last answer as a problem, even when it is not JSON', async () => {
    const upstream = await scriptedServer(() => ({ status: 503, headers: { 'content-type': 'text/html', 'retry-after': '0' }, body: '<h1>upstream down</h1>' }));
    try {
      const client = new OtpdClient({ baseUrl: upstream.url, apiKey: 'k', maxRetries: 2 });
      await assert.rejects(client.verifications.get('ve_1'), (error: unknown) => {
        assert.ok(error instanceof OtpdProblemError);
        assert.equal(error.status, 503);
        assert.equal(error.type, 'about:blank');
        assert.match(error.detail, /upstream down/);
        return true;
      });
      assert.equal(upstream.requests.length, 3);
    } finally {
      await upstream.close();
    }
  });

  it('retries an Idempotency-Key still in progress (409) with the same key, then returns the result', async () => {
    const verification = { id: 've_1', status: 'pending' };
    const upstream = await scriptedServer((_request, index): Answer =>
      index < 2
        ? { status: 409, headers: { 'content-type': 'application/problem+json', 'retry-after': '0' }, body: JSON.stringify({ type: 'urn:otpd:problem:idempotency-in-progress', title: 'A request with this Idempotency-Key is still in progress', status: 409, detail: 'retry shortly' }) }
        : { status: 201, headers: { 'content-type': 'application/json' }, body: JSON.stringify(verification) },
    );
    try {
      const client = new OtpdClient({ baseUrl: upstream.url, apiKey: 'k' });
      assert.deepEqual(await client.verifications.create({ to: '+15555550207' }), verification);
      const keys = upstream.requests.map((request) => request.headers['idempotency-key']);
      assert.equal(keys.length, 3);
      assert.ok(keys.every((key) => key === keys[0]));
    } finally {
      await upstream.close();
    }
  });

  it('does not retry other errors, and stops waiting when the caller aborts', async () => {
    const upstream = await scriptedServer(() => ({ status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '5' }, body: JSON.stringify({ type: 'urn:otpd:problem:rate-limited', title: 'Rate limit exceeded', status: 429, detail: 'slow down' }) }));
    try {
      const client = new OtpdClient({ baseUrl: upstream.url, apiKey: 'k' });
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(new Error('caller gave up')), 200);
      await assert.rejects(client.verifications.get('ve_1', { signal: controller.signal }), /caller gave up/);
      assert.ok(Date.now() - started < 2_000);
      assert.equal(upstream.requests.length, 1);
    } finally {
      await upstream.close();
    }
    const notFound = await scriptedServer(() => ({ status: 404, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify({ type: 'urn:otpd:problem:not-found', title: 'Not found', status: 404, detail: 'no verification ve_1' }) }));
    try {
      await assert.rejects(new OtpdClient({ baseUrl: notFound.url, apiKey: 'k' }).verifications.get('ve_1'), (error: unknown) => error instanceof OtpdProblemError && error.status === 404);
      assert.equal(notFound.requests.length, 1);
    } finally {
      await notFound.close();
    }
  });

  it('reads Retry-After as seconds or as an HTTP date, and validates its options', () => {
    assert.equal(parseRetryAfter('7'), 7);
    assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2030, 0, 1)), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
    assert.throws(() => new OtpdClient({ baseUrl: 'ftp://x', apiKey: 'k' }), /baseUrl/);
    assert.throws(() => new OtpdClient({ baseUrl: 'http://x', apiKey: 'k', maxRetries: 1000 }), /maxRetries must be an integer from 0 to 10/);
  });
});
