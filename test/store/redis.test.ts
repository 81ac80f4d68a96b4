import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { newId } from '../../src/core/ids.js';
import { defaultSettings } from '../../src/core/settings.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { openRedisStore, VERIFICATION_GRACE_MS } from '../../src/store/redis/index.js';
import type { Store } from '../../src/store/store.js';
import { deleteKeysWithPrefix, inspectionClient, keysWithPrefix, uniquePrefix } from '../support/redis-keys.js';
import { storeContract, TEST_ROUTING_KEY } from './contract.js';
import { pendingVerification } from '../support/fixtures.js';

/** The shared Redis CI starts (decisions 22); each run works under its own prefix and deletes it afterwards. */
const REDIS_URL = 'redis://127.0.0.1:6379';

function open(prefix: string): Promise<Store> {
  return openRedisStore({ urls: [REDIS_URL], cluster: false, prefix, routingKey: TEST_ROUTING_KEY });
}

async function deletePrefix(prefix: string): Promise<void> {
  const client = inspectionClient(REDIS_URL);
  try {
    await deleteKeysWithPrefix(client, prefix);
  } finally {
    client.disconnect();
  }
}

const contractPrefix = uniquePrefix('contract');
storeContract('redis', () => open(contractPrefix), () => deletePrefix(contractPrefix));

describe('Redis store specifics', () => {
  const prefix = uniquePrefix('specifics');
  let store: Store;
  let other: Store;
  let redis: Redis;
  const appId = newId('app');

  before(async () => {
    store = await open(prefix);
    other = await open(prefix);
    redis = inspectionClient(REDIS_URL);
    await store.insertApp({ id: appId, name: 'specifics', settings: defaultSettings(), createdAt: Date.now(), updatedAt: Date.now() });
  });
  after(async () => {
    await store.close();
    await other.close();
    redis.disconnect();
    await deletePrefix(prefix);
  });

  function verification(now: number, overrides: Partial<VerificationRecord> = {}): VerificationRecord {
    const to = overrides.to ?? `+1555${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
    return pendingVerification(TEST_ROUTING_KEY, appId, to, now, { codeHash: 'x'.repeat(43), codeKid: 'abcd1234', ...overrides });
  }

  it('gives every short-lived key a TTL: only apps, API keys and records without ttl are permanent', async () => {
    const now = Date.now();
    await store.insertApiKey({ id: newId('key'), appId, hash: 'h-' + appId, prefix: 'otpd_x', createdAt: now, revokedAt: null });
    await store.createVerification(verification(now), now);
    await store.beginIdempotent(appId, 'idem', 'fp', 60_000, now);
    await store.hit('quota', 10, 60_000, now);
    await store.claimOnce('claim', 60_000, now);
    await store.putRecord('ns', 'with-ttl', { a: 1 }, { ttlMs: 60_000 }, now);
    await store.putRecord('ns', 'permanent', { a: 1 }, {}, now);

    const keys = await keysWithPrefix(redis, prefix);
    assert.ok(keys.length >= 10, `expected the keys written above, found ${keys.length}`);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      const permanent = key.startsWith(`${prefix}{apps}:`) || key === `${prefix}r:ns:permanent`;
      if (permanent) assert.equal(ttl, -1, `${key} should not expire`);
      else assert.ok(ttl > 0, `${key} has no expiry (pttl ${ttl})`);
    }
  });

  it('expires a verification 24 h after expiresAt and its pending index at expiresAt; a resend moves both', async () => {
    const now = Date.now();
    const record = verification(now);
    await store.createVerification(record, now);
    const [vkey] = (await keysWithPrefix(redis, prefix)).filter((k) => k.endsWith(record.id));
    const [ikey] = (await keysWithPrefix(redis, prefix)).filter((k) => k.endsWith(`${appId}:${record.to}`));
    assert.ok(vkey && ikey);
    const near = (actual: number, expected: number): void => assert.ok(Math.abs(actual - expected) < 5_000, `ttl ${actual} is not near ${expected}`);
    near(await redis.pttl(vkey), 600_000 + VERIFICATION_GRACE_MS);
    near(await redis.pttl(ikey), 600_000);

    const resent = await store.resendVerification(appId, record.id, { codeHash: 'y'.repeat(43), codeKid: 'abcd1234' }, { maxSends: 5, cooldownMs: 0, ttlMs: 900_000 }, now);
    assert.equal(resent?.ok, true);
    near(await redis.pttl(vkey), 900_000 + VERIFICATION_GRACE_MS);
    near(await redis.pttl(ikey), 900_000);
  });

  it('keeps a verification as a compact listpack hash', async () => {
    const now = Date.now();
    const record = verification(now, { metadata: { plan: 'pro' }, locale: 'fr' });
    await store.createVerification(record, now);
    const [vkey] = (await keysWithPrefix(redis, prefix)).filter((k) => k.endsWith(record.id));
    assert.ok(vkey);
    assert.equal(await redis.object('ENCODING', vkey), 'listpack');
  });

  it('runs its scripts again after the script cache is flushed (NOSCRIPT falls back to EVAL)', async () => {
    const now = Date.now();
    const record = verification(now);
    await store.createVerification(record, now);
    // Both connections have sent this script already, so their next call is an EVALSHA that meets NOSCRIPT.
    assert.equal((await store.checkVerification(appId, record.id, { abcd1234: 'wrong' }, now + 1))?.outcome, 'wrong');
    assert.equal((await other.checkVerification(appId, record.id, { abcd1234: 'wrong' }, now + 2))?.outcome, 'wrong');
    await redis.script('FLUSH');
    assert.equal((await store.checkVerification(appId, record.id, { abcd1234: 'wrong' }, now + 3))?.outcome, 'wrong');
    assert.equal((await other.checkVerification(appId, record.id, { abcd1234: 'x'.repeat(43) }, now + 4))?.outcome, 'approved');
    assert.equal((await store.getVerification(appId, record.id))?.attempts, 3);
  });

  it('counts attempts across two store instances without ever passing maxAttempts (standards T1, T2)', async () => {
    const now = Date.now();
    const record = verification(now, { maxAttempts: 5 });
    await store.createVerification(record, now);
    const guesses = Array.from({ length: 100 }, (_, i) => (i % 2 ? store : other).checkVerification(appId, record.id, { abcd1234: 'wrong-' + i }, now + 1));
    const results = await Promise.all(guesses);
    assert.equal(results.filter((r) => r?.outcome === 'wrong').length, 5);
    const right = await other.checkVerification(appId, record.id, { abcd1234: 'x'.repeat(43) }, now + 2);
    assert.equal(right?.outcome, 'not_pending');
    assert.equal((await store.getVerification(appId, record.id))?.attempts, 5);
  });

  it('refuses a verification id whose routing tag is not its destination\'s', async () => {
    const now = Date.now();
    const record = verification(now);
    await assert.rejects(store.createVerification({ ...record, to: record.to + '1' }, now), /routing tag/);
  });

  it('rejects a key prefix containing a hash-tag brace', async () => {
    await assert.rejects(open('otpd{x}:'), /must not contain/);
  });
});
