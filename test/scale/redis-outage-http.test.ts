import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

/** Redis going away: answers fail fast with 503 and a problem body, /healthz says so, and service resumes. */
let redis: RedisServer;
let server: TestServer;

before(async () => {
  redis = await startRedisServer();
  server = await startTestServer({ OTPD_REDIS_URL: redis.url, OTPD_REDIS_PREFIX: 'outage:' });
});
after(async () => {
  await server?.close();
  await redis?.stop();
});

describe('Redis outage through HTTP', () => {
  it('answers 503 quickly while Redis is down and recovers by itself', async () => {
    const created = await server.request('POST', '/v1/verifications', { to: '+15555556001' });
    assert.equal(created.status, 201);
    await redis.stop();

    const started = Date.now();
    const down = await server.request('POST', '/v1/verifications', { to: '+15555556002' });
    assert.ok(Date.now() - started < 5_000, 'failed fast');
    // The API key lookup may be cached; either way the request must not hang or crash.
    assert.equal(down.status, 503, down.text);
    assert.equal(down.body.type, 'urn:otpd:problem:store-unavailable');
    assert.match(down.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const health = await server.request('GET', '/healthz', undefined, { apiKey: null });
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'unavailable');

    await redis.restart();
    // Nothing was persisted: the restarted Redis is empty, so the API key is registered again by a restart
    // of otpd in real life. Health must come back by itself, bounded.
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy = (await server.request('GET', '/healthz', undefined, { apiKey: null })).status === 200;
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(healthy, '/healthz recovered within 10 s');
    // The restarted Redis kept nothing; registering the key again (as a restarted otpd would) serves again.
    await server.server.services.apps.ensureDefaultApp(server.apiKey);
    const again = await server.request('POST', '/v1/verifications', { to: '+15555556003' });
    assert.equal(again.status, 201, again.text);
  });
});
