import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { newId, routingTag } from '../../src/core/ids.js';
import { defaultSettings } from '../../src/core/settings.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { destinationDigest } from '../../src/store/redis/codec.js';
import { openRedisStore, VERIFICATION_GRACE_MS } from '../../src/store/redis/index.js';
import { groupOf, RedisKeys } from '../../src/store/redis/keys.js';
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
  const keys = new RedisKeys(prefix);

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

  it("a create its destination's rules refuse takes its message's due-index entry out again", async () => {
    const now = Date.now();
    const to = '+15557770003';
    const rule = { cooldownMs: 30_000, window: null };
    const message = (v: VerificationRecord) => ({ id: newId('msg', now), appId, reference: v.id, payload: 'sealed', send: 1, dueAt: now, expiresAt: v.expiresAt });
    const first = verification(now, { to });
    await store.createVerification(first, now, message(first), rule);
    const refused = verification(now + 1, { to });
    const refusedMessage = message(refused);
    await assert.rejects(store.createVerification(refused, now + 1, refusedMessage, rule), /less than 30 s ago/);
    assert.equal(await redis.zscore(keys.outboxDue(), `${refused.id}|${refusedMessage.id}`), null);
    assert.equal(await redis.hget(keys.outboxMeta(), `${refused.id}|${refusedMessage.id}`), null);
    assert.equal(await redis.exists(keys.verification(refused.id)!), 0);
  });
  it("a destination's send state is one hash in its group's slot, expiring when its cooldown and counts are over, never sooner", async () => {
    const to = '+15557770001';
    const now = Date.now();
    const key = keys.destination(groupOf(routingTag(TEST_ROUTING_KEY, appId, to)), destinationDigest(TEST_ROUTING_KEY, appId, to));
    const rule = { cooldownMs: 30_000, window: { max: 5, windowMs: 600_000 } };
    assert.equal((await store.admitSend(appId, to, rule, now)).allowed, true);
    assert.deepEqual(await redis.hgetall(key), { u: String(now + 30_000), w: String(Math.floor(now / 600_000) * 600_000), c: '1', p: '0' });
    const windowEnd = Math.floor(now / 600_000) * 600_000 + 1_200_000;
    const ttl = await redis.pttl(key);
    assert.ok(ttl > windowEnd - Date.now() - 1_000 && ttl <= windowEnd - now, `ttl ${ttl}`);
    // A restart without the window's rule does not cut the counts' life short.
    await store.restartCooldown(appId, to, 30_000, now + 1);
    assert.ok((await redis.pttl(key)) > windowEnd - Date.now() - 1_000);
    const cooldownOnly = '+15557770002';
    const short = keys.destination(groupOf(routingTag(TEST_ROUTING_KEY, appId, cooldownOnly)), destinationDigest(TEST_ROUTING_KEY, appId, cooldownOnly));
    await store.admitSend(appId, cooldownOnly, { cooldownMs: 30_000, window: null }, now);
    const shortTtl = await redis.pttl(short);
    assert.ok(shortTtl > 25_000 && shortTtl <= 30_000, `ttl ${shortTtl}`);
  });

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

  it('expires a verification 24 h after expiresAt and its group\'s pending pointers no sooner than expiresAt; a resend moves both', async () => {
    const now = Date.now();
    const record = verification(now);
    await store.createVerification(record, now);
    const vkey = keys.verification(record.id)!;
    const pkey = keys.pendingPointers(groupOf(routingTag(TEST_ROUTING_KEY, appId, record.to)));
    assert.equal(await redis.hget(pkey, destinationDigest(TEST_ROUTING_KEY, appId, record.to)), record.id.slice(3));
    const near = (actual: number, expected: number): void => assert.ok(Math.abs(actual - expected) < 5_000, `ttl ${actual} is not near ${expected}`);
    near(await redis.pttl(vkey), 600_000 + VERIFICATION_GRACE_MS);
    assert.ok((await redis.pttl(pkey)) > 600_000 - 5_000);

    const resent = await store.resendVerification(appId, record.id, { codeHash: 'y'.repeat(43), codeKid: 'abcd1234' }, { maxSends: 5, cooldownMs: 0, ttlMs: 900_000 }, now);
    assert.equal(resent?.ok, true);
    near(await redis.pttl(vkey), 900_000 + VERIFICATION_GRACE_MS);
    assert.ok((await redis.pttl(pkey)) > 900_000 - 5_000);
  });

  it('keeps a default pending verification in four listpack fields, and its pointer in the group\'s hash', async () => {
    const now = Date.now();
    const record = verification(now, { codeHash: randomBytes(32).toString('base64url') });
    await store.createVerification(record, now);
    const vkey = keys.verification(record.id)!;
    assert.equal(await redis.object('ENCODING', vkey), 'listpack');
    assert.deepEqual((await redis.hkeys(vkey)).sort(), ['K', 'a', 'e', 't']);
    assert.equal((await redis.hget(vkey, 'K'))?.length, 45);
    // No key names the destination: the pointer is a field of the group's hash.
    assert.deepEqual((await keysWithPrefix(redis, prefix)).filter((k) => k.includes(record.to.slice(1))), []);
    assert.deepEqual(await store.getVerification(appId, record.id), record);
  });

  it('keeps a verification with metadata and a locale as a listpack too', async () => {
    const now = Date.now();
    const record = verification(now, { metadata: { plan: 'pro' }, locale: 'fr' });
    await store.createVerification(record, now);
    assert.equal(await redis.object('ENCODING', keys.verification(record.id)!), 'listpack');
  });

  it('reads back every kind of destination and code hash exactly, and checks either kind of hash', async () => {
    const now = Date.now();
    for (const to of ['person@example.com', '15551234567', '~x', '+15551230000', '+0123']) {
      for (const codeHash of [randomBytes(32).toString('base64url'), 'x'.repeat(43), 'short']) {
        const record = verification(now, { to, codeHash });
        await store.createVerification(record, now);
        assert.deepEqual(await store.getVerification(appId, record.id), record);
        assert.equal((await store.findPendingVerification(appId, to, now + 1))?.id, record.id);
        assert.equal((await store.checkVerification(appId, record.id, { abcd1234: codeHash + 'x' }, now + 1))?.outcome, 'wrong');
        // The right hash under another key id is still wrong, whichever way the record's hash is stored.
        assert.equal((await store.checkVerification(appId, record.id, { deadbeef: codeHash }, now + 1))?.outcome, 'wrong');
        const right = await store.checkVerification(appId, record.id, { other: codeHash, abcd1234: codeHash }, now + 2);
        assert.equal(right?.outcome, 'approved');
        assert.equal(right?.verification.codeHash, codeHash);
        assert.equal(right?.verification.to, to);
      }
    }
    // A resend may switch the key id and hash between their two forms; the old form goes.
    const record = verification(now, { codeHash: 'text-hash' });
    await store.createVerification(record, now);
    const binary = randomBytes(32).toString('base64url');
    const policy = { maxSends: 5, cooldownMs: 0, ttlMs: 600_000 };
    assert.equal((await store.resendVerification(appId, record.id, { codeHash: binary, codeKid: 'abcd1234' }, policy, now + 1))?.verification.codeHash, binary);
    assert.equal((await store.checkVerification(appId, record.id, { abcd1234: 'text-hash' }, now + 2))?.outcome, 'wrong');
    assert.equal((await store.resendVerification(appId, record.id, { codeHash: 'text-2', codeKid: 'abcd1234' }, policy, now + 3))?.verification.codeHash, 'text-2');
    assert.equal((await store.checkVerification(appId, record.id, { abcd1234: binary }, now + 4))?.outcome, 'wrong');
    assert.equal((await store.checkVerification(appId, record.id, { abcd1234: 'text-2' }, now + 5))?.outcome, 'approved');
  });

  /** `count` phone numbers whose routing tags share the first one's group (a group is 1/32768 of them). */
  function sameGroup(first: string, count: number): string[] {
    const group = groupOf(routingTag(TEST_ROUTING_KEY, appId, first));
    const found = [first];
    for (let i = 1; found.length < count; i++) {
      const to = `${first.slice(0, 5)}9${String(i).padStart(6, '0')}`;
      if (groupOf(routingTag(TEST_ROUTING_KEY, appId, to)) === group) found.push(to);
    }
    return found;
  }

  it('sweeps pointers of ended verifications from the group on a later create, and keeps live ones', async () => {
    const now = Date.now();
    const [approved, abandoned, live, later] = sameGroup('+15560000000', 4) as [string, string, string, string];
    const first = verification(now, { to: approved });
    const second = verification(now, { to: abandoned, expiresAt: now + 1_000 });
    const third = verification(now, { to: live, expiresAt: now + 3_600_000 });
    for (const record of [first, second, third]) await store.createVerification(record, now);
    assert.equal((await store.checkVerification(appId, first.id, { abcd1234: first.codeHash }, now + 1))?.outcome, 'approved');
    const pkey = keys.pendingPointers(groupOf(routingTag(TEST_ROUTING_KEY, appId, approved)));
    const pointer = (to: string): Promise<string | null> => redis.hget(pkey, destinationDigest(TEST_ROUTING_KEY, appId, to));
    assert.equal(await pointer(approved), first.id.slice(3));
    // Sweeps run at most every 10 minutes and spare a pending verification's pointer until 10 minutes past its expiry.
    const sweep = now + 21 * 60_000;
    await store.createVerification(verification(sweep, { to: later }), sweep);
    assert.equal(await pointer(approved), null);
    assert.equal(await pointer(abandoned), null);
    assert.equal(await pointer(live), third.id.slice(3));
    assert.equal((await store.findPendingVerification(appId, live, sweep))?.id, third.id);
    assert.equal(Number(await redis.hget(pkey, 'prune')), sweep + 10 * 60_000);
  });

  it('erases a destination\'s verifications and pointer, and nothing of a destination sharing its group', async () => {
    const now = Date.now();
    const [person, neighbour] = sameGroup('+15570000000', 2) as [string, string];
    const gone = [verification(now, { to: person }), verification(now + 1, { to: person, createdAt: now + 1 })];
    const kept = verification(now, { to: neighbour });
    for (const record of [...gone, kept]) await store.createVerification(record, record.createdAt);
    assert.equal(await store.eraseDestination(appId, person), 2);
    for (const record of gone) assert.equal(await store.getVerification(appId, record.id), undefined);
    assert.equal(await store.findPendingVerification(appId, person, now + 2), undefined);
    assert.deepEqual(await store.getVerification(appId, kept.id), kept);
    assert.equal((await store.findPendingVerification(appId, neighbour, now + 2))?.id, kept.id);
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

  it('sends the store calls of one turn of the event loop, from every callback of it, to Redis in one socket write, and answers each', async () => {
    const now = Date.now();
    const records = Array.from({ length: 3 }, (_, i) => verification(now + i));
    for (const record of records) await store.createVerification(record, now);
    // A connection of its own: after the script cache flush above, another one's first EVALSHA of a script
    // would meet NOSCRIPT and be sent again, a second write.
    const fresh = await open(prefix);
    // Socket writes to Redis are counted (not the test runner's own output): the other clients of this file are idle meanwhile.
    const socket = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
    const original = { write: socket._write, writev: socket._writev };
    let writes = 0;
    socket._write = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === 6379) writes++;
      return original.write.apply(this, args);
    };
    socket._writev = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === 6379) writes++;
      return original.writev.apply(this, args);
    };
    let found: Awaited<ReturnType<Store['getVerification']>>[];
    let counter: Awaited<ReturnType<Store['hit']>>;
    try {
      // Each call issued from a callback of its own, as each request is read in one: immediates queued
      // together run in one phase, one after another, and the calls still share the write after it.
      const later = <T>(call: () => Promise<T>) => new Promise<T>((resolve, reject) => setImmediate(() => call().then(resolve, reject)));
      [found, counter] = await Promise.all([Promise.all(records.map((record) => later(() => fresh.getVerification(appId, record.id)))), later(() => fresh.hit('coalesce', 10, 60_000, now))]);
    } finally {
      socket._write = original.write;
      socket._writev = original.writev;
      await fresh.close();
    }
    assert.equal(writes, 1);
    assert.deepEqual(found.map((record) => record?.id), records.map((record) => record.id));
    assert.equal(counter.count, 1);
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

  it('a delivery report with the lease of its message deletes the message key with the report, and only that message', async () => {
    const now = Date.now();
    const record = verification(now);
    const message = { id: newId('msg', now), appId, reference: record.id, payload: 'sealed', send: 1, dueAt: now, expiresAt: record.expiresAt };
    await store.createVerification(record, now, { ...message, lease: { token: 'writer', until: now + 30_000 } });
    const entry = keys.outboxEntry(record.id);
    assert.equal(await redis.exists(entry), 1);
    const lease = { ...message, tries: 1, lastError: null, leaseToken: 'writer', leaseUntil: now + 30_000 };
    // A lease of an older message of the same verification leaves the current one alone.
    await store.recordDelivery(appId, record.id, { status: 'sent', send: 1 }, now + 1, { ...lease, id: newId('msg', now - 1) });
    assert.equal(await redis.exists(entry), 1, 'a newer message stays');
    await store.recordDelivery(appId, record.id, { status: 'sent', send: 1 }, now + 2, lease);
    assert.equal(await redis.exists(entry), 0, 'the message is gone with its report');
    await assert.rejects(store.recordDelivery(appId, record.id, { status: 'sent', send: 1 }, now + 3, { ...lease, reference: 'tw_other' }), /must be its own/);
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
