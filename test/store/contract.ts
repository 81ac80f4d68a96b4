import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SendRule } from '../../src/core/destination-sends.js';
import { newId } from '../../src/core/ids.js';
import { defaultSettings } from '../../src/core/settings.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { isOtpdError } from '../../src/errors.js';
import type { AppRecord, Store } from '../../src/store/store.js';
import { auditEventsContract } from './contract-audit-events.js';
import { outboxContract } from './contract-outbox.js';
import { pendingVerification } from '../support/fixtures.js';

/** Every backend under test is opened with this routing key, so ids made here route like the store's. */
export const TEST_ROUTING_KEY = Buffer.alloc(32, 7);

/**
 * The store contract: every backend runs this same suite (`sqlite.test.ts`, `redis.test.ts`,
 * `redis-cluster.test.ts`). A behaviour the services rely on belongs here, once.
 */
export function storeContract(name: string, open: () => Promise<Store>, teardown?: () => Promise<void>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let app: AppRecord;
    // Real time, so Redis key expiries derived from these times stay sensible.
    const T0 = Date.now();

    before(async () => {
      store = await open();
      app = { id: newId('app'), name: `contract-${Math.random().toString(36).slice(2)}`, settings: defaultSettings(), createdAt: T0, updatedAt: T0 };
      await store.insertApp(app);
    });
    after(async () => {
      await store.close();
      await teardown?.();
    });

    function verification(overrides: Partial<VerificationRecord> = {}): VerificationRecord {
      const now = overrides.createdAt ?? T0;
      const to = overrides.to ?? `+1555${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
      return pendingVerification(TEST_ROUTING_KEY, app.id, to, now, overrides);
    }

    describe('apps and keys', () => {
      it('rejects a second app with the same name', async () => {
        await assert.rejects(store.insertApp({ ...app, id: newId('app') }), (error) => isOtpdError(error, 'APP_EXISTS'));
      });
      it('finds apps by id and name, lists, updates and deletes them', async () => {
        const other: AppRecord = { ...app, id: newId('app'), name: app.name + '-other' };
        await store.insertApp(other);
        assert.equal((await store.getApp(other.id))?.name, other.name);
        assert.equal((await store.getAppByName(other.name))?.id, other.id);
        assert.ok((await store.listApps()).some((a) => a.id === other.id));
        await store.updateApp({ ...other, settings: { ...other.settings, maxAttempts: 3 }, updatedAt: T0 + 1 });
        assert.equal((await store.getApp(other.id))?.settings.maxAttempts, 3);
        const key = { id: newId('key'), appId: other.id, hash: 'h-' + other.id, prefix: 'otpd_x', createdAt: T0, revokedAt: null };
        await store.insertApiKey(key);
        assert.equal(await store.deleteApp(other.id), true);
        assert.equal(await store.getApp(other.id), undefined);
        assert.equal(await store.getAppByName(other.name), undefined);
        assert.equal(await store.getApiKeyByHash(key.hash), undefined);
        assert.equal(await store.deleteApp(other.id), false);
      });
      it('refuses to rename an app to a taken name', async () => {
        const other: AppRecord = { ...app, id: newId('app'), name: app.name + '-rename' };
        await store.insertApp(other);
        await assert.rejects(store.updateApp({ ...other, name: app.name }), (error) => isOtpdError(error, 'APP_EXISTS'));
        assert.equal((await store.getAppByName(app.name))?.id, app.id);
        await store.deleteApp(other.id);
      });
      it('stores API keys by hash and revokes them once', async () => {
        const key = { id: newId('key'), appId: app.id, hash: 'hash-' + Math.random(), prefix: 'otpd_abc', createdAt: T0, revokedAt: null };
        await store.insertApiKey(key);
        assert.deepEqual(await store.getApiKeyByHash(key.hash), key);
        assert.ok((await store.listApiKeys(app.id)).some((k) => k.id === key.id));
        assert.equal(await store.revokeApiKey(key.id, T0 + 5), true);
        assert.equal(await store.revokeApiKey(key.id, T0 + 6), false);
        assert.equal((await store.getApiKeyByHash(key.hash))?.revokedAt, T0 + 5);
        assert.equal(await store.revokeApiKey('key_missing', T0), false);
      });
    });

    describe('verifications', () => {
      it('creates and reads back a verification exactly', async () => {
        const record = verification({ metadata: { plan: 'pro', n: 1 }, locale: 'fr' });
        const { verification: stored, supersededId } = await store.createVerification(record, T0);
        assert.equal(supersededId, undefined);
        assert.deepEqual(stored, record);
        assert.deepEqual(await store.getVerification(app.id, record.id), record);
      });
      it('hides a verification from other apps', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        assert.equal(await store.getVerification('app_other', record.id), undefined);
        assert.equal(await store.checkVerification('app_other', record.id, { k1: 'hash-right' }, T0), undefined);
        assert.equal(await store.cancelVerification('app_other', record.id, T0), undefined);
      });
      it('approves the right code once and never again', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        const first = await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 1000);
        assert.equal(first?.outcome, 'approved');
        assert.equal(first?.verification.status, 'approved');
        const second = await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 2000);
        assert.equal(second?.outcome, 'not_pending');
        assert.equal(second?.verification.status, 'approved');
      });
      it('compares the hash made with the record\'s key id', async () => {
        const record = verification({ codeKid: 'old' });
        await store.createVerification(record, T0);
        const wrongKid = await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 1);
        assert.equal(wrongKid?.outcome, 'wrong');
        const rightKid = await store.checkVerification(app.id, record.id, { k1: 'nope', old: 'hash-right' }, T0 + 2);
        assert.equal(rightKid?.outcome, 'approved');
      });
      it('counts wrong codes and locks at maxAttempts, rejecting even the right code', async () => {
        const record = verification({ maxAttempts: 3 });
        await store.createVerification(record, T0);
        for (let i = 1; i <= 3; i++) {
          const result = await store.checkVerification(app.id, record.id, { k1: 'wrong' }, T0 + i);
          assert.equal(result?.outcome, 'wrong');
          assert.equal(result?.verification.attempts, i);
        }
        const locked = await store.getVerification(app.id, record.id);
        assert.equal(locked?.status, 'max_attempts_reached');
        const right = await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 10);
        assert.equal(right?.outcome, 'not_pending');
        assert.equal(right?.verification.status, 'max_attempts_reached');
        assert.equal(right?.verification.attempts, 3);
      });
      it('expires at expiresAt: the right code then fails', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        const result = await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, record.expiresAt + 1000);
        assert.equal(result?.outcome, 'expired');
        assert.equal(result?.verification.status, 'expired');
        assert.equal((await store.getVerification(app.id, record.id))?.status, 'expired');
      });
      it('never exceeds maxAttempts under concurrent wrong checks, and approves exactly once', async () => {
        const record = verification({ maxAttempts: 5 });
        await store.createVerification(record, T0);
        const results = await Promise.all(Array.from({ length: 100 }, (_, i) => store.checkVerification(app.id, record.id, { k1: 'wrong' }, T0 + i)));
        assert.equal(results.filter((r) => r?.outcome === 'wrong').length, 5);
        assert.equal((await store.getVerification(app.id, record.id))?.attempts, 5);

        const fresh = verification();
        await store.createVerification(fresh, T0);
        const rights = await Promise.all(Array.from({ length: 20 }, () => store.checkVerification(app.id, fresh.id, { k1: 'hash-right' }, T0 + 5)));
        assert.equal(rights.filter((r) => r?.outcome === 'approved').length, 1);
      });
      it('finds the latest pending verification for a destination', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        assert.equal((await store.findPendingVerification(app.id, record.to, T0 + 1))?.id, record.id);
        assert.equal(await store.findPendingVerification(app.id, record.to, record.expiresAt + 1), undefined);
        assert.equal(await store.findPendingVerification('app_other', record.to, T0 + 1), undefined);
        await store.cancelVerification(app.id, record.id, T0 + 2);
        assert.equal(await store.findPendingVerification(app.id, record.to, T0 + 3), undefined);
      });
      it('supersedes a pending verification of the same destination and carries its attempts', async () => {
        const first = verification();
        await store.createVerification(first, T0);
        await store.checkVerification(app.id, first.id, { k1: 'wrong' }, T0 + 1);
        await store.checkVerification(app.id, first.id, { k1: 'wrong' }, T0 + 2);
        const second = verification({ to: first.to, createdAt: T0 + 3 });
        const result = await store.createVerification(second, T0 + 3);
        assert.equal(result.supersededId, first.id);
        assert.equal(result.verification.attempts, 2);
        assert.equal((await store.getVerification(app.id, first.id))?.status, 'canceled');
        assert.equal((await store.findPendingVerification(app.id, first.to, T0 + 4))?.id, second.id);
        const third = verification({ to: first.to, createdAt: T0 + 5 });
        // The second one expired before the third: nothing to carry or cancel.
        const later = await store.createVerification({ ...third, createdAt: second.expiresAt + 10, expiresAt: second.expiresAt + 600_000 }, second.expiresAt + 10);
        assert.equal(later.supersededId, undefined);
        assert.equal(later.verification.attempts, 0);
      });
      it('resends: new code, attempts kept, sends counted, expiry moved; cooldown and max sends enforced', async () => {
        const record = verification({ maxAttempts: 5 });
        await store.createVerification(record, T0);
        await store.checkVerification(app.id, record.id, { k1: 'wrong' }, T0 + 1);
        const policy = { maxSends: 3, cooldownMs: 30_000, ttlMs: 600_000 };
        const early = await store.resendVerification(app.id, record.id, { codeHash: 'hash-2', codeKid: 'k1' }, policy, T0 + 10_000);
        assert.equal(early?.ok, false);
        assert.equal(early && !early.ok && early.reason, 'cooldown');
        assert.equal(early && !early.ok && early.retryAfterMs, 20_000);
        const ok = await store.resendVerification(app.id, record.id, { codeHash: 'hash-2', codeKid: 'k1' }, policy, T0 + 30_000);
        assert.equal(ok?.ok, true);
        assert.equal(ok?.verification.sends, 2);
        assert.equal(ok?.verification.attempts, 1);
        assert.equal(ok?.verification.expiresAt, T0 + 30_000 + 600_000);
        assert.equal((await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 30_001))?.outcome, 'wrong');
        await store.resendVerification(app.id, record.id, { codeHash: 'hash-3', codeKid: 'k1' }, policy, T0 + 60_000);
        const tooMany = await store.resendVerification(app.id, record.id, { codeHash: 'hash-4', codeKid: 'k1' }, policy, T0 + 90_000);
        assert.equal(tooMany && !tooMany.ok && tooMany.reason, 'max_sends');
        const check = await store.checkVerification(app.id, record.id, { k1: 'hash-3' }, T0 + 90_001);
        assert.equal(check?.outcome, 'approved');
        assert.equal(check?.verification.attempts, 2);
        const after = await store.resendVerification(app.id, record.id, { codeHash: 'hash-5', codeKid: 'k1' }, policy, T0 + 200_000);
        assert.equal(after && !after.ok && after.reason, 'not_pending');
      });
      it('cancels a pending verification once', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        const first = await store.cancelVerification(app.id, record.id, T0 + 1);
        assert.equal(first?.ok, true);
        assert.equal(first?.verification.status, 'canceled');
        const second = await store.cancelVerification(app.id, record.id, T0 + 2);
        assert.equal(second?.ok, false);
        assert.equal((await store.checkVerification(app.id, record.id, { k1: 'hash-right' }, T0 + 3))?.outcome, 'not_pending');
      });
      it('records delivery reports, and fails a pending verification when asked', async () => {
        const record = verification();
        await store.createVerification(record, T0);
        const sent = await store.recordDelivery(app.id, record.id, { status: 'sent', provider: 'log', providerMessageId: 'm-1' }, T0 + 1);
        assert.equal(sent?.deliveryStatus, 'sent');
        assert.equal(sent?.deliveryProvider, 'log');
        assert.equal(sent?.providerMessageId, 'm-1');
        assert.equal(sent?.status, 'pending');
        const failed = await store.recordDelivery(app.id, record.id, { status: 'failed', failureReason: 'bounced', failVerification: true }, T0 + 2);
        assert.equal(failed?.status, 'failed');
        assert.equal(failed?.failureReason, 'bounced');
        assert.equal(failed?.deliveryProvider, 'log');
        assert.equal(await store.recordDelivery(app.id, 've_missing', { status: 'sent' }, T0), undefined);
      });
      it('purges verifications that ended long enough ago', async (t) => {
        if (store.backend === 'redis') return t.skip('Redis expires verification keys natively');
        const record = verification({ expiresAt: T0 + 1000 });
        await store.createVerification(record, T0);
        await store.purgeVerifications(T0 + 2000);
        assert.equal(await store.getVerification(app.id, record.id), undefined);
      });
    });

    describe('destinations', () => {
      const number = () => `+1556${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
      const cooldownOnly: SendRule = { cooldownMs: 30_000, window: null };

      it('a send starts the cooldown, which refuses creates until it ends (naming the limit and the wait) but not resends', async () => {
        const to = number();
        const now = Date.now();
        assert.deepEqual(await store.admitSend(app.id, to, cooldownOnly, now), { allowed: true, cooldownUntil: now + 30_000 });
        assert.deepEqual(await store.admitSend(app.id, to, cooldownOnly, now + 1_000), { allowed: false, limit: 'destination-cooldown', retryAfterMs: 29_000 });
        assert.deepEqual(await store.admitSend(app.id, to, { cooldownMs: 0, window: null }, now + 1_000), { allowed: true, cooldownUntil: 0 });
        assert.deepEqual(await store.admitSend(app.id, to, cooldownOnly, now + 30_000), { allowed: true, cooldownUntil: now + 60_000 });
      });
      it('sends are counted in a sliding window; a send refused by either rule counts nothing', async () => {
        const window = 60_000;
        const start = Math.floor(Date.now() / window) * window;
        const to = number();
        const rule: SendRule = { cooldownMs: 0, window: { max: 3, windowMs: window } };
        const results = [];
        for (let i = 0; i < 4; i++) results.push(await store.admitSend(app.id, to, rule, start + 10));
        assert.deepEqual(results.map((r) => r.allowed), [true, true, true, false]);
        // As slidingHit: in the next window 3 × (1 − x/60 s) + 1 ≤ 3 at x = 20 s.
        assert.deepEqual(results[3], { allowed: false, limit: 'sends-per-destination', retryAfterMs: window - 10 + 20_000 });
        assert.equal((await store.admitSend(app.id, to, rule, start + window + window / 3)).allowed, true);

        const both: SendRule = { cooldownMs: 10_000, window: { max: 2, windowMs: window } };
        const other = number();
        assert.equal((await store.admitSend(app.id, other, both, start + 10)).allowed, true);
        assert.equal((await store.admitSend(app.id, other, both, start + 20)).allowed, false);
        // Had the refused create counted, this second send would pass the window's 2.
        assert.equal((await store.admitSend(app.id, other, both, start + 10_010)).allowed, true);
        // Two in this window: in the next one 2 × (1 − x/60 s) + 1 ≤ 2 at x = 30 s.
        assert.deepEqual(await store.admitSend(app.id, other, both, start + 20_010), { allowed: false, limit: 'sends-per-destination', retryAfterMs: window - 20_010 + 30_000 });
      });
      it('a refund gives back the send and the cooldown it started, but not a cooldown a later send restarted', async () => {
        const to = number();
        const now = Date.now();
        const rule: SendRule = { cooldownMs: 30_000, window: { max: 1, windowMs: 600_000 } };
        const first = await store.admitSend(app.id, to, rule, now);
        assert.ok(first.allowed);
        await store.refundSend(app.id, to, rule, first.cooldownUntil, now + 1);
        const second = await store.admitSend(app.id, to, rule, now + 2);
        assert.ok(second.allowed, 'the refund released both the count and the cooldown');
        await store.restartCooldown(app.id, to, 30_000, now + 3);
        await store.refundSend(app.id, to, rule, second.cooldownUntil, now + 4);
        assert.deepEqual(await store.admitSend(app.id, to, rule, now + 5), { allowed: false, limit: 'destination-cooldown', retryAfterMs: 29_998 });
        assert.equal((await store.admitSend(app.id, to, { cooldownMs: 0, window: rule.window }, now + 5)).allowed, true, 'the count was given back');
        await store.refundSend(app.id, number(), rule, now, now);
      });
      it('a restarted cooldown is never shortened, and starts where none ran', async () => {
        const to = number();
        const now = Date.now();
        await store.restartCooldown(app.id, to, 20_000, now);
        assert.deepEqual(await store.admitSend(app.id, to, cooldownOnly, now + 1), { allowed: false, limit: 'destination-cooldown', retryAfterMs: 19_999 });
        await store.restartCooldown(app.id, to, 5_000, now + 2);
        assert.deepEqual(await store.admitSend(app.id, to, cooldownOnly, now + 3), { allowed: false, limit: 'destination-cooldown', retryAfterMs: 19_997 });
      });
      it("a send's rules, refund and restart leave the destination's pending verification findable and superseded by the next create", async () => {
        const to = number();
        const now = Date.now();
        const rule: SendRule = { cooldownMs: 0, window: { max: 5, windowMs: 600_000 } };
        const first = verification({ to, createdAt: now });
        await store.createVerification(first, now, undefined, rule);
        const admitted = await store.admitSend(app.id, to, rule, now + 1);
        assert.equal(admitted.allowed, true);
        await store.refundSend(app.id, to, rule, 0, now + 2);
        await store.restartCooldown(app.id, to, 1_000, now + 3);
        assert.equal((await store.findPendingVerification(app.id, to, now + 4))?.id, first.id);
        const second = verification({ to, createdAt: now + 5 });
        assert.equal((await store.createVerification(second, now + 5, undefined, rule)).supersededId, first.id);
      });
      it('is atomic under concurrency: one send per cooldown, the window’s max per window', async () => {
        const now = Date.now();
        const to = number();
        const cooled = await Promise.all(Array.from({ length: 30 }, () => store.admitSend(app.id, to, cooldownOnly, now)));
        assert.equal(cooled.filter((r) => r.allowed).length, 1);
        const counted = number();
        const rule: SendRule = { cooldownMs: 0, window: { max: 4, windowMs: 600_000 } };
        const windowed = await Promise.all(Array.from({ length: 30 }, () => store.admitSend(app.id, counted, rule, now)));
        assert.equal(windowed.filter((r) => r.allowed).length, 4);
      });
      it('a create with a rule decides it with the insert: counted when created, nothing written when refused', async () => {
        const now = Date.now();
        const to = number();
        const rule: SendRule = { cooldownMs: 30_000, window: { max: 5, windowMs: 600_000 } };
        const first = verification({ to, createdAt: now });
        await store.createVerification(first, now, undefined, rule);
        // The create started the cooldown, as admitSend would have.
        assert.deepEqual(await store.admitSend(app.id, to, rule, now + 1), { allowed: false, limit: 'destination-cooldown', retryAfterMs: 29_999 });
        const second = verification({ to, createdAt: now + 2 });
        await assert.rejects(store.createVerification(second, now + 2, undefined, rule), (error) => {
          assert.ok(isOtpdError(error, 'RATE_LIMITED'));
          assert.equal(error.extensions?.limit, 'destination-cooldown');
          assert.equal(error.retryAfter, 30);
          return true;
        });
        assert.equal(await store.getVerification(app.id, second.id), undefined);
        assert.equal((await store.findPendingVerification(app.id, to, now + 3))?.id, first.id, 'the pending one was not superseded');
        assert.equal((await store.getVerification(app.id, first.id))?.attempts, 0);
        // Past the cooldown the next create goes through and supersedes; without a rule nothing is checked.
        const third = verification({ to, createdAt: now + 30_000 });
        assert.equal((await store.createVerification(third, now + 30_000, undefined, rule)).supersededId, first.id);
        const unchecked = verification({ to, createdAt: now + 30_001 });
        assert.equal((await store.createVerification(unchecked, now + 30_001)).supersededId, third.id);
      });
      it('concurrent creates to one destination under its cooldown: exactly one is written', async () => {
        const now = Date.now();
        const to = number();
        const results = await Promise.allSettled(Array.from({ length: 20 }, () => store.createVerification(verification({ to, createdAt: now }), now, undefined, cooldownOnly)));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.ok(results.every((r) => r.status === 'fulfilled' || isOtpdError(r.reason, 'RATE_LIMITED')));
      });
      it('keeps destinations of different apps and numbers apart, and erasure removes one', async () => {
        const to = number();
        const now = Date.now();
        assert.equal((await store.admitSend(app.id, to, cooldownOnly, now)).allowed, true);
        assert.equal((await store.admitSend('app_other', to, cooldownOnly, now)).allowed, true);
        assert.equal((await store.admitSend(app.id, number(), cooldownOnly, now)).allowed, true);
        await store.eraseDestination(app.id, to);
        assert.equal((await store.admitSend(app.id, to, cooldownOnly, now + 1)).allowed, true, 'the erased state is gone');
        assert.equal((await store.admitSend('app_other', to, cooldownOnly, now + 1)).allowed, false, "the other app's is not");
      });
    });

    describe('idempotency', () => {
      it('returns new, then in_progress, then the stored response; a different fingerprint is a mismatch', async () => {
        const key = 'idem-' + Math.random();
        assert.deepEqual(await store.beginIdempotent(app.id, key, 'fp1', 60_000, T0), { state: 'new' });
        assert.deepEqual(await store.beginIdempotent(app.id, key, 'fp1', 60_000, T0), { state: 'in_progress' });
        assert.deepEqual(await store.beginIdempotent(app.id, key, 'fp2', 60_000, T0), { state: 'mismatch' });
        await store.completeIdempotent(app.id, key, { statusCode: 201, body: { id: 'x' } }, 60_000, T0);
        assert.deepEqual(await store.beginIdempotent(app.id, key, 'fp1', 60_000, T0 + 1), { state: 'done', response: { statusCode: 201, body: { id: 'x' } } });
        assert.deepEqual(await store.beginIdempotent('other-scope', key, 'fp1', 60_000, T0), { state: 'new' });
      });
      it('forgets an abandoned key', async () => {
        const key = 'idem-' + Math.random();
        await store.beginIdempotent(app.id, key, 'fp', 60_000, T0);
        await store.abandonIdempotent(app.id, key);
        assert.deepEqual(await store.beginIdempotent(app.id, key, 'fp', 60_000, T0), { state: 'new' });
      });
    });

    describe('primitives', () => {
      it('hit counts within a window, refuses past the limit, and resets with the next window', async () => {
        const key = 'q-' + Math.random();
        const window = 60_000;
        const start = Math.floor(Date.now() / window) * window;
        const results = [];
        for (let i = 0; i < 4; i++) results.push(await store.hit(key, 3, window, start + 10));
        assert.deepEqual(results.map((r) => r.allowed), [true, true, true, false]);
        assert.deepEqual(results.map((r) => r.count), [1, 2, 3, 3]);
        assert.ok(results[3]!.resetMs > 0 && results[3]!.resetMs <= window);
        assert.equal((await store.hit(key, 3, window, start + window + 1)).allowed, true);
      });
      it('hit is atomic under concurrency', async () => {
        const key = 'q-' + Math.random();
        const now = Date.now();
        const results = await Promise.all(Array.from({ length: 50 }, () => store.hit(key, 10, 60_000, now)));
        assert.equal(results.filter((r) => r.allowed).length, 10);
      });
      it('slidingHit admits the limit, refuses past it with a Retry-After, and weighs the previous window', async () => {
        const key = 's-' + Math.random();
        const window = 60_000;
        const start = Math.floor(Date.now() / window) * window;
        const results = [];
        for (let i = 0; i < 4; i++) results.push(await store.slidingHit(key, 3, window, start + 10));
        assert.deepEqual(results.map((r) => r.allowed), [true, true, true, false]);
        assert.deepEqual(results.map((r) => r.count), [1, 2, 3, 3]);
        // Refused at the window's start with 3 in it: in the next window 3 × (1 − x/60 s) + 1 ≤ 3 at x = 20 s.
        assert.equal(results[3]!.retryAfterMs, window - 10 + 20_000);
        // A quarter into the next window the previous three still weigh 2.25: nothing fits...
        const quarter = await store.slidingHit(key, 3, window, start + window + window / 4);
        assert.equal(quarter.allowed, false);
        assert.equal(quarter.count, 2.25);
        assert.equal(quarter.retryAfterMs, window / 3 - window / 4);
        // ...until a third in, where 2 + 1 fits exactly; then the next refuses again.
        const third = await store.slidingHit(key, 3, window, start + window + window / 3);
        assert.equal(third.allowed, true);
        assert.equal(third.count, 3);
        assert.equal((await store.slidingHit(key, 3, window, start + window + window / 3)).allowed, false);
        // Two windows on, the old counts are gone.
        assert.equal((await store.slidingHit(key, 3, window, start + 3 * window)).count, 1);
      });
      it('slidingHit refunds with a negative cost, never below zero, and reads with cost 0', async () => {
        const key = 's-' + Math.random();
        const now = Date.now();
        await store.slidingHit(key, 2, 60_000, now);
        await store.slidingHit(key, 2, 60_000, now);
        assert.equal((await store.slidingHit(key, 2, 60_000, now)).allowed, false);
        const refund = await store.slidingHit(key, 2, 60_000, now, -1);
        assert.equal(refund.allowed, true);
        assert.equal(refund.count, 1);
        assert.equal((await store.slidingHit(key, 2, 60_000, now, -5)).count, 0);
        const read = await store.slidingHit(key, Number.MAX_SAFE_INTEGER, 60_000, now, 0);
        assert.deepEqual(read, { allowed: true, count: 0, retryAfterMs: 0 });
      });
      it('slidingHit is atomic under concurrency', async () => {
        const key = 's-' + Math.random();
        const now = Date.now();
        const results = await Promise.all(Array.from({ length: 50 }, () => store.slidingHit(key, 10, 60_000, now)));
        assert.equal(results.filter((r) => r.allowed).length, 10);
      });
      it('claimOnce claims a key once', async () => {
        const key = 'c-' + Math.random();
        const results = await Promise.all(Array.from({ length: 10 }, () => store.claimOnce(key, 60_000, Date.now())));
        assert.equal(results.filter(Boolean).length, 1);
      });
      it('records support create-if-absent, compare-and-set and delete', async () => {
        const id = 'r-' + Math.random();
        const now = Date.now();
        assert.equal(await store.getRecord('ns', id, now), undefined);
        const v1 = await store.putRecord('ns', id, { a: 1 }, { ifVersion: null }, now);
        assert.equal(v1, 1);
        assert.equal(await store.putRecord('ns', id, { a: 2 }, { ifVersion: null }, now), undefined);
        assert.deepEqual(await store.getRecord('ns', id, now), { value: { a: 1 }, version: 1 });
        const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => store.putRecord('ns', id, { a: 10 + i }, { ifVersion: 1 }, now)));
        assert.equal(racers.filter((v) => v === 2).length, 1);
        assert.equal(await store.putRecord('ns', id, { a: 3 }, {}, now), 3);
        assert.equal(await store.deleteRecord('ns', id), true);
        assert.equal(await store.deleteRecord('ns', id), false);
      });
      it('records expire with their ttl', async () => {
        const id = 'r-' + Math.random();
        const now = Date.now();
        await store.putRecord('ns', id, { a: 1 }, { ttlMs: 50 }, now);
        assert.ok(await store.getRecord('ns', id, now));
        await new Promise((resolve) => setTimeout(resolve, 120));
        assert.equal(await store.getRecord('ns', id, Date.now()), undefined);
      });
    });

    auditEventsContract(() => ({ store, app, verification }));
    outboxContract(() => ({ store, app, verification }));
  });
}
