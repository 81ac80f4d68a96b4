import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId } from '../../src/core/ids.js';
import { defaultSettings } from '../../src/core/settings.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { isOtpdError } from '../../src/errors.js';
import { openRedisStore } from '../../src/store/redis/index.js';
import type { Store } from '../../src/store/store.js';
import { waitFor } from '../support/redis-process.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { TEST_ROUTING_KEY } from './contract.js';
import { pendingVerification } from '../support/fixtures.js';

/**
 * Redis going away: with the server stopped, every store call must fail fast with STORE_UNAVAILABLE
 * (requests answer 503 instead of hanging), and once the server is back the same store object works again
 * by itself, scripts included (the restarted server's script cache is empty).
 */

/** A store call must settle well within this, or the test fails instead of hanging. */
const CALL_LIMIT_MS = 2000;
const RECOVERY_LIMIT_MS = 10_000;

function settleWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms + 1000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('Redis store when Redis goes away', { timeout: 90_000 }, () => {
  let server: RedisServer;
  let store: Store;
  const appId = newId('app');
  const now = Date.now();

  function verification(): VerificationRecord {
    const to = `+1555${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
    return pendingVerification(TEST_ROUTING_KEY, appId, to, now, { codeHash: 'right' });
  }

  const existing = verification();

  /** One call of every Store method that talks to Redis. */
  const calls: [string, () => Promise<unknown>][] = [
    ['ping', () => store.ping()],
    ['insertApp', () => store.insertApp({ id: newId('app'), name: 'n-' + Math.random(), settings: defaultSettings(), createdAt: now, updatedAt: now })],
    ['getApp', () => store.getApp(appId)],
    ['getAppByName', () => store.getAppByName('outage')],
    ['listApps', () => store.listApps()],
    ['updateApp', () => store.updateApp({ id: appId, name: 'outage', settings: defaultSettings(), createdAt: now, updatedAt: now + 1 })],
    ['deleteApp', () => store.deleteApp(newId('app'))],
    ['insertApiKey', () => store.insertApiKey({ id: newId('key'), appId, hash: 'h-' + Math.random(), prefix: 'otpd_x', createdAt: now, revokedAt: null })],
    ['getApiKeyByHash', () => store.getApiKeyByHash('h')],
    ['listApiKeys', () => store.listApiKeys(appId)],
    ['revokeApiKey', () => store.revokeApiKey('key_x', now)],
    ['createVerification', () => store.createVerification(verification(), now)],
    ['getVerification', () => store.getVerification(appId, existing.id)],
    ['findPendingVerification', () => store.findPendingVerification(appId, existing.to, now)],
    ['checkVerification', () => store.checkVerification(appId, existing.id, { k1: 'wrong' }, now)],
    ['resendVerification', () => store.resendVerification(appId, existing.id, { codeHash: 'h2', codeKid: 'k1' }, { maxSends: 5, cooldownMs: 0, ttlMs: 600_000 }, now)],
    ['cancelVerification', () => store.cancelVerification(appId, verification().id, now)],
    ['recordDelivery', () => store.recordDelivery(appId, existing.id, { status: 'sent' }, now)],
    ['beginIdempotent', () => store.beginIdempotent(appId, 'k-' + Math.random(), 'fp', 60_000, now)],
    ['completeIdempotent', () => store.completeIdempotent(appId, 'k', { statusCode: 201, body: {} }, 60_000, now)],
    ['abandonIdempotent', () => store.abandonIdempotent(appId, 'k')],
    ['hit', () => store.hit('q', 10, 60_000, now)],
    ['claimOnce', () => store.claimOnce('c-' + Math.random(), 60_000, now)],
    ['getRecord', () => store.getRecord('ns', 'id', now)],
    ['putRecord', () => store.putRecord('ns', 'id', { a: 1 }, {}, now)],
    ['deleteRecord', () => store.deleteRecord('ns', 'id')],
  ];

  before(async () => {
    server = await startRedisServer();
    store = await openRedisStore({ urls: [server.url], cluster: false, prefix: 'otpd:', routingKey: TEST_ROUTING_KEY });
    await store.insertApp({ id: appId, name: 'outage', settings: defaultSettings(), createdAt: now, updatedAt: now });
    await store.createVerification(existing, now);
  });
  after(async () => {
    await store?.close();
    await server?.stop();
  });

  it('works while Redis is up', async () => {
    for (const [name, call] of calls) await settleWithin(call(), CALL_LIMIT_MS, name);
  });

  it('times out quickly when Redis stops answering without closing connections, and recovers', async () => {
    server.pause();
    try {
      // Each of these waits for the command timeout (1 s) rather than failing at once, so only a few run one by one.
      for (const [name, call] of calls.filter(([name]) => ['ping', 'checkVerification', 'getVerification', 'listApps'].includes(name))) {
        const started = Date.now();
        await assert.rejects(settleWithin(call(), CALL_LIMIT_MS, name), (error) => isOtpdError(error, 'STORE_UNAVAILABLE'), `${name} should fail with STORE_UNAVAILABLE`);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < CALL_LIMIT_MS, `${name} took ${elapsed} ms to fail`);
      }
      const started = Date.now();
      const results = await Promise.allSettled(calls.map(([name, call]) => settleWithin(call(), CALL_LIMIT_MS, name)));
      assert.ok(results.every((r) => r.status === 'rejected' && isOtpdError(r.reason, 'STORE_UNAVAILABLE')));
      assert.ok(Date.now() - started < CALL_LIMIT_MS * 2, `all calls together took ${Date.now() - started} ms`);
    } finally {
      server.resume();
    }
    await waitFor('the store to answer again', async () => {
      await store.ping();
      return true;
    }, RECOVERY_LIMIT_MS, 200);
    assert.ok(await store.getVerification(appId, existing.id));
  });

  it('rejects every call quickly with STORE_UNAVAILABLE while Redis is down', async () => {
    await server.stop();
    for (const [name, call] of calls) {
      const started = Date.now();
      await assert.rejects(settleWithin(call(), CALL_LIMIT_MS, name), (error) => isOtpdError(error, 'STORE_UNAVAILABLE'), `${name} should fail with STORE_UNAVAILABLE`);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < CALL_LIMIT_MS, `${name} took ${elapsed} ms to fail`);
    }
    // All at once too: nothing queues up behind the outage.
    const started = Date.now();
    const results = await Promise.allSettled(calls.map(([name, call]) => settleWithin(call(), CALL_LIMIT_MS, name)));
    assert.ok(results.every((r) => r.status === 'rejected' && isOtpdError(r.reason, 'STORE_UNAVAILABLE')));
    assert.ok(Date.now() - started < CALL_LIMIT_MS);
  });

  it('refuses to open while Redis is down, within its ready timeout', async () => {
    const started = Date.now();
    await assert.rejects(
      openRedisStore({ urls: [server.url], cluster: false, prefix: 'otpd:', routingKey: TEST_ROUTING_KEY, readyTimeoutMs: 1000 }),
      (error) => isOtpdError(error, 'STORE_UNAVAILABLE'),
    );
    assert.ok(Date.now() - started < 3000);
  });

  it('works again by itself once Redis is back, scripts included', async () => {
    await server.restart();
    await waitFor('the store to answer again', async () => {
      await store.ping();
      return true;
    }, RECOVERY_LIMIT_MS, 200);
    // The restarted server is empty: no app, no verification, no cached scripts.
    for (const [name, call] of calls) await settleWithin(call(), CALL_LIMIT_MS, name);
    const record = verification();
    await store.createVerification(record, now);
    assert.equal((await store.checkVerification(appId, record.id, { k1: 'wrong' }, now + 1))?.outcome, 'wrong');
    assert.equal((await store.checkVerification(appId, record.id, { k1: 'right' }, now + 2))?.outcome, 'approved');
  });

  it('settles every call in flight when Redis dies under load', async () => {
    const record = verification();
    await store.createVerification(record, now);
    const inFlight = Array.from({ length: 200 }, (_, i) => settleWithin(store.checkVerification(appId, record.id, { k1: 'wrong-' + i }, now + 1), CALL_LIMIT_MS * 2, `check ${i}`));
    await server.stop();
    const results = await Promise.allSettled(inFlight);
    for (const result of results) {
      if (result.status === 'rejected') assert.ok(isOtpdError(result.reason, 'STORE_UNAVAILABLE'), String(result.reason));
    }
    await server.restart();
    await waitFor('the store to answer again', async () => {
      await store.ping();
      return true;
    }, RECOVERY_LIMIT_MS, 200);
  });
});
