import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/core/ids.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import { isOtpdError } from '../../src/errors.js';
import type { AppRecord, NewAuditEntry, Store } from '../../src/store/store.js';

interface Fixture {
  store: Store;
  app: AppRecord;
  verification(overrides?: Partial<VerificationRecord>): VerificationRecord;
}

function entry(overrides: Partial<NewAuditEntry> = {}): NewAuditEntry {
  return {
    at: Date.now(),
    event: 'verification.created',
    resource: null,
    keyId: 'key_1',
    ip: '127.0.0.1',
    userAgent: 'test',
    requestId: 'req_1',
    destinationHash: null,
    destinationMasked: null,
    details: null,
    ...overrides,
  };
}

const YEAR = 365 * 86_400_000;

/**
 * The Store contract for record listing, the audit log, the webhook event queue and erasure
 * (docs/audit-and-events.md). Called from `storeContract` (contract.ts), so it runs on every backend.
 */
export function auditEventsContract(fixture: () => Fixture): void {
  describe('record listing', () => {
    it('pages through every live record of a namespace, and only that namespace', async () => {
      const { store } = fixture();
      const ns = `list-${Math.random().toString(36).slice(2)}`;
      const now = Date.now();
      const written = new Map<string, number>();
      for (let i = 0; i < 25; i++) {
        const id = `r${i}:${Math.random().toString(36).slice(2)}`;
        await store.putRecord(ns, id, { i }, i % 5 === 0 ? { ttlMs: 3_600_000 } : {}, now);
        written.set(id, i);
      }
      await store.putRecord(`${ns}-other`, 'not-mine', { i: -1 }, {}, now);
      await store.putRecord(ns, 'gone', { i: -2 }, { ttlMs: 1 }, now - 10);
      // Redis expires in its own time: give the 1 ms a few to pass, or a fast machine lists the key still alive.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const seen = new Map<string, { value: { i: number }; version: number; expiresAt: number | null }>();
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listRecords<{ i: number }>(ns, cursor, 10, Date.now());
        for (const item of page.items) seen.set(item.id, item);
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== undefined && pages < 100);
      assert.equal(cursor, undefined, 'the listing ends');
      assert.deepEqual([...seen.keys()].sort(), [...written.keys()].sort());
      for (const [id, item] of seen) {
        assert.equal(item.value.i, written.get(id));
        assert.equal(item.version, 1);
        if (written.get(id)! % 5 === 0) assert.ok(item.expiresAt !== null && Math.abs(item.expiresAt - (now + 3_600_000)) < 60_000, `${id} keeps its expiry`);
        else assert.equal(item.expiresAt, null);
      }
    });
  });

  describe('audit log', () => {
    it('appends in order and lists newest first, paging with a cursor', async () => {
      const { store } = fixture();
      const app = { id: newId('app') };
      const base = Date.now();
      const ids = await store.appendAudit(app.id, Array.from({ length: 7 }, (_, i) => entry({ at: base + (i < 4 ? 0 : i), event: `e.${i}`, resource: `ve_${i}` })), YEAR, base);
      assert.equal(ids.length, 7);
      assert.equal(new Set(ids).size, 7);
      const events: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listAudit(app.id, { since: base }, cursor, 3);
        assert.ok(page.items.length <= 3);
        events.push(...page.items.map((item) => item.event));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== undefined && pages < 10);
      assert.deepEqual(events, ['e.6', 'e.5', 'e.4', 'e.3', 'e.2', 'e.1', 'e.0'], 'entries of one millisecond keep their order');
      const [first] = (await store.listAudit(app.id, { event: 'e.0', since: base }, undefined, 10)).items;
      assert.deepEqual({ ...first, id: undefined }, { ...entry({ at: base, event: 'e.0', resource: 've_0' }), id: undefined });
    });

    it('filters by event, resource, destination hash and time; keeps apps apart', async () => {
      const { store } = fixture();
      const app = { id: newId('app') };
      const other = newId('app');
      const base = Date.now() - 10_000;
      await store.appendAudit(app.id, [
        entry({ at: base, event: 'check.failed', resource: 've_a', destinationHash: 'h1', destinationMasked: '+1******0100' }),
        entry({ at: base + 1000, event: 'check.failed', resource: 've_b', destinationHash: 'h2' }),
        entry({ at: base + 2000, event: 'code.replayed', resource: 've_a', destinationHash: 'h1', details: { channel: 'sms', attempts: 2, locked: false } }),
      ], YEAR, base);
      await store.appendAudit(other, [entry({ at: base, event: 'check.failed', resource: 've_a' })], YEAR, base);
      const list = async (filters: Parameters<Store['listAudit']>[1]) => (await store.listAudit(app.id, { since: base, ...filters }, undefined, 50)).items;
      assert.deepEqual((await list({ event: 'check.failed' })).map((e) => e.resource), ['ve_b', 've_a']);
      assert.deepEqual((await list({ resource: 've_a' })).map((e) => e.event), ['code.replayed', 'check.failed']);
      assert.deepEqual((await list({ destinationHash: 'h1' })).map((e) => e.event), ['code.replayed', 'check.failed']);
      assert.deepEqual((await list({ since: base + 500, until: base + 2000 })).map((e) => e.resource), ['ve_b']);
      const [replayed] = await list({ event: 'code.replayed' });
      assert.deepEqual(replayed!.details, { channel: 'sms', attempts: 2, locked: false });
      assert.equal((await store.listAudit(other, {}, undefined, 50)).items.length, 1);
    });

    it('refuses a cursor it did not issue', async () => {
      const { store, app } = fixture();
      await assert.rejects(store.listAudit(app.id, {}, 'not-a-cursor', 10), (error) => isOtpdError(error, 'VALIDATION') && /cursor/.test(error.message));
    });

    it('deletes given entries and purges entries older than a time', async () => {
      const { store } = fixture();
      const appId = newId('app');
      const now = Date.now();
      const [old1, old2] = await store.appendAudit(appId, [entry({ at: now - 5000, event: 'old' }), entry({ at: now - 4000, event: 'old' })], YEAR, now);
      const [keep, erase] = await store.appendAudit(appId, [entry({ at: now, event: 'keep' }), entry({ at: now, event: 'erase' })], YEAR, now);
      assert.equal(await store.deleteAudit(appId, [erase!]), 1);
      assert.equal(await store.deleteAudit(appId, [erase!]), 0);
      assert.equal(await store.purgeAudit(appId, now - 1000), 2);
      const left = (await store.listAudit(appId, {}, undefined, 10)).items;
      assert.deepEqual(left.map((e) => e.id), [keep]);
      assert.ok(old1 && old2);
      // Appending after a deletion of the newest entry still works (stream ids never go back).
      assert.equal((await store.appendAudit(appId, [entry({ at: now - 60_000, event: 'late' })], YEAR, now)).length, 1);
      assert.deepEqual((await store.listAudit(appId, {}, undefined, 10)).items.map((e) => e.event), ['late', 'keep']);
    });
  });

  describe('event queue', () => {
    it('leases due events once, retries them later with the attempt counted, and forgets completed ones', async () => {
      const { store } = fixture();
      const now = Date.now() + 10 * 86_400_000; // far enough ahead that other tests' events are not due here
      const event = (id: string, dueAt: number) => ({ id, appId: 'app_x', type: 'verification.approved', payload: `{"id":"${id}"}`, dueAt, expiresAt: now + 86_400_000 });
      const a = newId('evt');
      const b = newId('evt');
      const later = newId('evt');
      await store.enqueueEvents([event(a, now - 2), event(b, now - 1), event(later, now + 30_000)], now);
      await store.enqueueEvents([event(a, now + 99_999)], now); // an id already queued is left as it was

      const claimed = await store.claimEvents(now, 30_000, 100);
      const mine = claimed.filter((e) => e.id === a || e.id === b || e.id === later);
      assert.deepEqual(mine.map((e) => e.id).sort(), [a, b].sort());
      for (const e of mine) {
        assert.equal(e.attempts, 1);
        assert.equal(e.lastError, null);
        assert.equal(e.payload, `{"id":"${e.id}"}`);
        assert.equal(e.appId, 'app_x');
      }
      assert.equal((await store.claimEvents(now + 1, 30_000, 100)).filter((e) => e.id === a || e.id === b).length, 0, 'leased events are not handed out again');

      await store.retryEvent(a, now + 5_000, 'HTTP 500');
      await store.completeEvent(b);
      const again = (await store.claimEvents(now + 5_000, 30_000, 100)).filter((e) => e.id === a || e.id === b);
      assert.deepEqual(again.map((e) => [e.id, e.attempts, e.lastError]), [[a, 2, 'HTTP 500']]);
      // A lease that runs out makes the event due again (a process died while delivering).
      const expired = (await store.claimEvents(now + 5_000 + 30_000, 30_000, 100)).filter((e) => e.id === a || e.id === later);
      assert.deepEqual(expired.map((e) => [e.id, e.attempts]).sort(), [[a, 3], [later, 1]].sort());
      await store.completeEvent(a);
      await store.completeEvent(later);
    });

    it('never hands one event to two concurrent claimers', async () => {
      const { store } = fixture();
      const now = Date.now() + 20 * 86_400_000;
      const ids = Array.from({ length: 20 }, () => newId('evt'));
      await store.enqueueEvents(ids.map((id) => ({ id, appId: 'app_y', type: 't', payload: '{}', dueAt: now, expiresAt: now + 86_400_000 })), now);
      const claims = await Promise.all(Array.from({ length: 6 }, () => store.claimEvents(now, 60_000, 7)));
      const got = claims.flat().map((e) => e.id).filter((id) => ids.includes(id));
      assert.equal(got.length, 20);
      assert.equal(new Set(got).size, 20);
      for (const id of ids) await store.completeEvent(id);
    });
  });

  describe('erasure', () => {
    it('erases every verification of a destination, pending and finished, and only those', async () => {
      const { store, app, verification } = fixture();
      const to = `+1666${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
      const now = Date.now();
      const first = verification({ to, createdAt: now - 3000 });
      const second = verification({ to, createdAt: now - 2000 });
      const third = verification({ to, createdAt: now - 1000 });
      const stranger = verification({ createdAt: now });
      await store.createVerification(first, now - 3000);
      await store.createVerification(second, now - 2000); // supersedes the first
      await store.checkVerification(app.id, second.id, { k1: 'hash-right' }, now - 1500); // approved
      await store.createVerification(third, now - 1000); // pending
      await store.createVerification(stranger, now);
      assert.equal(await store.eraseDestination(app.id, to), 3);
      for (const v of [first, second, third]) assert.equal(await store.getVerification(app.id, v.id), undefined);
      assert.equal(await store.findPendingVerification(app.id, to, now), undefined);
      assert.ok(await store.getVerification(app.id, stranger.id));
      assert.equal(await store.eraseDestination(app.id, to), 0);
      // The destination can be used again afterwards.
      const fresh = verification({ to, createdAt: now + 1 });
      assert.equal((await store.createVerification(fresh, now + 1)).supersededId, undefined);
      assert.equal((await store.findPendingVerification(app.id, to, now + 2))?.id, fresh.id);
    });
  });
}
