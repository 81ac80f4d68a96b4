import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';

let server: TestServer;
const logLines: string[] = [];
let phoneCounter = 0;
/** A fresh E.164 number per test, so no test supersedes another's verification. */
function phone(): string {
  return `+1555${String(process.pid % 1000).padStart(3, '0')}${String(++phoneCounter).padStart(4, '0')}`;
}
const wrongCode = (code: string) => (code[0] === '9' ? '0' : '9') + code.slice(1);

before(async () => {
  const logStream = new PassThrough();
  logStream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
  server = await startTestServer({ OTPD_LOG_LEVEL: 'info' }, { logStream });
});
after(() => server.close());

async function create(body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const response = await server.request('POST', '/v1/verifications', { to: phone(), ...body }, { headers });
  assert.equal(response.status, 201, response.text);
  return response.body;
}

describe('authentication', () => {
  it('refuses a request without a key with 401, a problem body and WWW-Authenticate', async () => {
    const response = await server.request('POST', '/v1/verifications', { to: phone() }, { apiKey: null });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="otpd"');
    assert.equal(response.body.type, 'urn:otpd:problem:unauthorized');
    assert.equal(response.body.status, 401);
  });
  it('refuses an unknown key and accepts X-API-Key', async () => {
    assert.equal((await server.request('GET', '/v1/verifications/ve_x', undefined, { apiKey: 'otpd_nope' })).status, 401);
    const response = await server.request('POST', '/v1/verifications', { to: phone() }, { apiKey: null, headers: { 'x-api-key': server.apiKey } });
    assert.equal(response.status, 201);
  });
  it('refuses a revoked key', async () => {
    const issued = await server.server.services.apps.createKey('default');
    assert.equal((await server.request('POST', '/v1/verifications', { to: phone() }, { apiKey: issued.apiKey })).status, 201);
    await server.server.services.apps.revokeKey(issued.id);
    assert.equal((await server.request('POST', '/v1/verifications', { to: phone() }, { apiKey: issued.apiKey })).status, 401);
  });
});

describe('POST /v1/verifications', () => {
  it('creates a pending verification, sends the code and never returns it', async () => {
    const to = phone();
    const response = await server.request('POST', '/v1/verifications', { to, metadata: { plan: 'pro' } });
    assert.equal(response.status, 201);
    const v = response.body;
    assert.match(v.id, /^ve_[0-9a-z]{26}$/);
    assert.equal(v.status, 'pending');
    assert.equal(v.to, to);
    assert.equal(v.channel, 'sms');
    assert.equal(v.attempts, 0);
    assert.equal(v.maxAttempts, 5);
    assert.equal(v.sends, 1);
    assert.deepEqual(v.metadata, { plan: 'pro' });
    assert.equal(v.delivery.status, 'queued');
    assert.equal(Date.parse(v.expiresAt) - Date.parse(v.createdAt), 600_000);
    assert.deepEqual(Object.keys(v).sort(), ['attempts', 'channel', 'createdAt', 'delivery', 'expiresAt', 'id', 'locale', 'maxAttempts', 'metadata', 'sends', 'status', 'to', 'updatedAt']);
    const code = await server.codeFor(v.id);
    assert.match(code, /^\d{6}$/);
    assert.ok(!response.text.includes(code));
    // The provider's answer is recorded just after the message is written: poll briefly.
    let fetched = await server.request('GET', `/v1/verifications/${v.id}`);
    for (let i = 0; i < 100 && fetched.body.delivery.status === 'queued'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      fetched = await server.request('GET', `/v1/verifications/${v.id}`);
    }
    assert.equal(fetched.body.delivery.status, 'delivered');
    assert.equal(fetched.body.delivery.provider, 'dev-outbox');
    assert.ok(!fetched.text.includes(code));
  });
  it('defaults the channel to email for an address and honours codeLength, ttl and maxAttempts', async () => {
    const v = (await server.request('POST', '/v1/verifications', { to: 'Someone@Example.COM', codeLength: 8, ttl: 120, maxAttempts: 2 })).body;
    assert.equal(v.channel, 'email');
    assert.equal(v.to, 'Someone@example.com');
    assert.equal(v.maxAttempts, 2);
    assert.equal(Date.parse(v.expiresAt) - Date.parse(v.createdAt), 120_000);
    assert.match(await server.codeFor(v.id), /^\d{8}$/);
  });
  const bad: Array<[string, unknown, string]> = [
    ['a malformed to', { to: '12345' }, 'to'],
    ['a too short number', { to: '+1234567' }, 'to'],
    ['a missing to', {}, 'to'],
    ['an unknown channel', { to: '+15555550123', channel: 'pigeon' }, 'channel'],
    ['sms to an email address', { to: 'a@example.com', channel: 'sms' }, 'channel'],
    ['email to a phone number', { to: '+15555550123', channel: 'email' }, 'channel'],
    ['codeLength 3', { to: '+15555550123', codeLength: 3 }, 'codeLength'],
    ['codeLength 11', { to: '+15555550123', codeLength: 11 }, 'codeLength'],
    ['codeLength as a string', { to: '+15555550123', codeLength: '6' }, 'codeLength'],
    ['ttl 29', { to: '+15555550123', ttl: 29 }, 'ttl'],
    ['ttl 86401', { to: '+15555550123', ttl: 86_401 }, 'ttl'],
    ['maxAttempts 0', { to: '+15555550123', maxAttempts: 0 }, 'maxAttempts'],
    ['maxAttempts 21', { to: '+15555550123', maxAttempts: 21 }, 'maxAttempts'],
    ['metadata over 4 KiB', { to: '+15555550123', metadata: { blob: 'x'.repeat(4100) } }, 'metadata'],
    ['metadata that is not an object', { to: '+15555550123', metadata: 'nope' }, 'metadata'],
    ['an unknown field', { to: '+15555550123', code: '123456' }, 'code'],
  ];
  for (const [name, body, field] of bad) {
    it(`answers 400 naming the field for ${name}`, async () => {
      const response = await server.request('POST', '/v1/verifications', body);
      assert.equal(response.status, 400, response.text);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(response.body.type, 'urn:otpd:problem:validation');
      assert.ok(response.body.errors.some((e: { field: string }) => e.field === field), JSON.stringify(response.body));
      assert.ok(!response.text.includes('    at '), 'no stack trace');
    });
  }
  it('answers 400 for invalid JSON and 415 for another content type', async () => {
    const invalid = await server.request('POST', '/v1/verifications', '{"to":', { headers: { 'content-type': 'application/json' } });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errors[0].field, 'body');
    const form = await server.request('POST', '/v1/verifications', 'to=%2B15555550123', { headers: { 'content-type': 'text/plain' } });
    assert.equal(form.status, 415);
    assert.equal(form.body.type, 'urn:otpd:problem:unsupported-media-type');
  });
  it('refuses a channel the app has not enabled', async () => {
    const { apiKey } = await server.server.services.apps.create('email-only', { channels: ['email'] });
    const response = await server.request('POST', '/v1/verifications', { to: phone() }, { apiKey });
    assert.equal(response.status, 400);
    assert.equal(response.body.errors[0].field, 'channel');
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response for the same key and body, sending nothing more', async () => {
    const to = phone();
    const first = await server.request('POST', '/v1/verifications', { to }, { headers: { 'idempotency-key': 'idem-1' } });
    const second = await server.request('POST', '/v1/verifications', { to }, { headers: { 'idempotency-key': 'idem-1' } });
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.deepEqual(second.body, first.body);
    await server.codeFor(first.body.id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(server.messages().filter((m) => m.to === to).length, 1);
  });
  it('answers 422 for the same key with another body, and 400 for a malformed key', async () => {
    await server.request('POST', '/v1/verifications', { to: phone() }, { headers: { 'idempotency-key': 'idem-2' } });
    const other = await server.request('POST', '/v1/verifications', { to: phone() }, { headers: { 'idempotency-key': 'idem-2' } });
    assert.equal(other.status, 422);
    assert.equal(other.body.type, 'urn:otpd:problem:idempotency-mismatch');
    const malformed = await server.request('POST', '/v1/verifications', { to: phone() }, { headers: { 'idempotency-key': 'x'.repeat(300) } });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.errors[0].field, 'Idempotency-Key');
  });
});

describe('GET /v1/verifications/:id', () => {
  it('answers 404 for an unknown id and for another app\'s id', async () => {
    const unknown = await server.request('GET', '/v1/verifications/ve_01m80cy3bdzhxb5418a41rr8gj');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.type, 'urn:otpd:problem:not-found');
    const v = await create();
    const { apiKey } = await server.server.services.apps.create('other-app', {});
    const foreign = await server.request('GET', `/v1/verifications/${v.id}`, undefined, { apiKey });
    assert.equal(foreign.status, 404);
    assert.deepEqual(Object.keys(foreign.body).sort(), Object.keys(unknown.body).sort());
    assert.equal(foreign.body.title, unknown.body.title);
  });
});

describe('POST /v1/verifications/:id/check', () => {
  it('rejects a wrong code (counting it), approves the right one, and approves only once', async () => {
    const v = await create();
    const code = await server.codeFor(v.id);
    const wrong = await server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrongCode(code) });
    assert.equal(wrong.status, 200);
    assert.equal(wrong.body.valid, false);
    assert.equal(wrong.body.status, 'pending');
    assert.equal(wrong.body.attempts, 1);
    const right = await server.request('POST', `/v1/verifications/${v.id}/check`, { code });
    assert.equal(right.body.valid, true);
    assert.equal(right.body.status, 'approved');
    assert.ok(!right.text.includes(code));
    const again = await server.request('POST', `/v1/verifications/${v.id}/check`, { code });
    assert.equal(again.status, 200);
    assert.equal(again.body.valid, false);
    assert.equal(again.body.status, 'approved');
  });
  it('T1: locks at maxAttempts; the right code then fails', async () => {
    const v = await create({ maxAttempts: 3 });
    const code = await server.codeFor(v.id);
    for (let i = 1; i <= 3; i++) {
      const response = await server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrongCode(code) });
      assert.equal(response.body.attempts, i);
    }
    const right = await server.request('POST', `/v1/verifications/${v.id}/check`, { code });
    assert.equal(right.body.valid, false);
    assert.equal(right.body.status, 'max_attempts_reached');
  });
  it('O2: a code of one verification does not approve another', async () => {
    const a = await create();
    const b = await create();
    const codeA = await server.codeFor(a.id);
    const codeB = await server.codeFor(b.id);
    if (codeA === codeB) return; // one chance in a million: nothing to prove
    const response = await server.request('POST', `/v1/verifications/${b.id}/check`, { code: codeA });
    assert.equal(response.body.valid, false);
  });
  it('answers 404 for an unknown id and 400 for a missing code', async () => {
    assert.equal((await server.request('POST', '/v1/verifications/ve_nope/check', { code: '123456' })).status, 404);
    const missing = await server.request('POST', `/v1/verifications/${(await create()).id}/check`, {});
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errors[0].field, 'code');
  });
});

describe('POST /v1/verifications/check (by destination)', () => {
  it('checks the latest pending verification of a destination; none is a 404', async () => {
    const to = phone();
    const v = await create({ to });
    const code = await server.codeFor(v.id);
    const response = await server.request('POST', '/v1/verifications/check', { to, code });
    assert.equal(response.status, 200);
    assert.equal(response.body.id, v.id);
    assert.equal(response.body.valid, true);
    const none = await server.request('POST', '/v1/verifications/check', { to, code });
    assert.equal(none.status, 404);
    const bad = await server.request('POST', '/v1/verifications/check', { to: 'nobody', code });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'to');
  });
});

describe('resend and cancel', () => {
  it('refuses a resend inside the cooldown with 429 and Retry-After', async () => {
    const v = await create();
    const response = await server.request('POST', `/v1/verifications/${v.id}/resend`);
    assert.equal(response.status, 429);
    assert.equal(response.body.type, 'urn:otpd:problem:resend-cooldown');
    const retryAfter = Number(response.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
  });
  it('T3: resend issues a new code, keeps attempts and stops the old code; max sends is a 429', async () => {
    const { apiKey } = await server.server.services.apps.create('fast-resend', { resendCooldown: 0, maxSends: 2 });
    const to = phone();
    const v = (await server.request('POST', '/v1/verifications', { to }, { apiKey })).body;
    const first = await server.codeFor(v.id);
    for (let i = 0; i < 4; i++) await server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrongCode(first) }, { apiKey });
    const resent = await server.request('POST', `/v1/verifications/${v.id}/resend`, undefined, { apiKey });
    assert.equal(resent.status, 200, resent.text);
    assert.equal(resent.body.sends, 2);
    assert.equal(resent.body.attempts, 4);
    const second = await server.codeFor(v.id, 2);
    const tooMany = await server.request('POST', `/v1/verifications/${v.id}/resend`, undefined, { apiKey });
    assert.equal(tooMany.status, 429);
    assert.equal(tooMany.body.type, 'urn:otpd:problem:max-sends');
    assert.ok(Number(tooMany.headers.get('retry-after')) > 0);
    if (first !== second) {
      const old = await server.request('POST', `/v1/verifications/${v.id}/check`, { code: first }, { apiKey });
      assert.equal(old.body.valid, false);
      assert.equal(old.body.status, 'max_attempts_reached', 'the fifth wrong code locks it (limit 5)');
      const right = await server.request('POST', `/v1/verifications/${v.id}/check`, { code: second }, { apiKey });
      assert.equal(right.body.valid, false);
    }
  });
  it('cancels a pending verification; cancel or resend afterwards is a 409 problem', async () => {
    const v = await create();
    const code = await server.codeFor(v.id);
    const canceled = await server.request('POST', `/v1/verifications/${v.id}/cancel`);
    assert.equal(canceled.status, 200);
    assert.equal(canceled.body.status, 'canceled');
    const again = await server.request('POST', `/v1/verifications/${v.id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(again.body.type, 'urn:otpd:problem:not-pending');
    assert.equal(again.body.verificationStatus, 'canceled');
    assert.equal((await server.request('POST', `/v1/verifications/${v.id}/resend`)).status, 409);
    assert.equal((await server.request('POST', `/v1/verifications/${v.id}/check`, { code })).body.valid, false);
  });
  it('a new create for the same destination cancels the pending one and carries its attempts (decisions 2)', async () => {
    // The per-destination cooldown would refuse a second send this soon; this app has none.
    const { apiKey } = await server.server.services.apps.create('no-destination-cooldown', { destinationCooldown: 0 });
    const to = phone();
    const first = (await server.request('POST', '/v1/verifications', { to }, { apiKey })).body;
    await server.request('POST', `/v1/verifications/${first.id}/check`, { code: 'x' }, { apiKey });
    await server.request('POST', `/v1/verifications/${first.id}/check`, { code: 'y' }, { apiKey });
    const second = await server.request('POST', '/v1/verifications', { to }, { apiKey });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.attempts, 2);
    assert.equal((await server.request('GET', `/v1/verifications/${first.id}`, undefined, { apiKey })).body.status, 'canceled');
  });
  it('O5: a second create to the same destination inside the cooldown is a 429 naming the limit', async () => {
    const to = phone();
    await create({ to });
    const again = await server.request('POST', '/v1/verifications', { to });
    assert.equal(again.status, 429);
    assert.ok(Number(again.headers.get('retry-after')) > 0);
  });
});

describe('health, unknown routes and hygiene', () => {
  it('GET /healthz answers {"status":"ok"}', async () => {
    const response = await server.request('GET', '/healthz', undefined, { apiKey: null });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { status: 'ok' });
  });
  it('unknown routes are a 404 problem', async () => {
    const response = await server.request('GET', '/v1/nothing-here');
    assert.equal(response.status, 404);
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  });
  it('every answer carries a request id, echoing a well-formed X-Request-Id', async () => {
    const response = await server.request('GET', '/healthz', undefined, { apiKey: null, headers: { 'x-request-id': 'trace-123' } });
    assert.equal(response.headers.get('x-request-id'), 'trace-123');
  });
  it('O3/S2: no code appears in any log line, and the database holds only keyed hashes', async () => {
    const v = await create({ codeLength: 10 });
    const code = await server.codeFor(v.id);
    await server.request('POST', `/v1/verifications/${v.id}/check`, { code: wrongCode(code) });
    await server.request('POST', `/v1/verifications/${v.id}/check`, { code });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(logLines.length > 0, 'the server logged requests');
    assert.ok(logLines.every((line) => !line.includes(code)), 'a log line holds the code');
    assert.ok(logLines.every((line) => !line.includes(server.apiKey)), 'a log line holds the API key');
    for (const file of ['otpd.db', 'otpd.db-wal']) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(server.dir, file));
      } catch {
        continue;
      }
      assert.equal(bytes.indexOf(code), -1, `${file} holds the plaintext code`);
    }
  });
});
