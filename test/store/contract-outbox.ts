import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/core/ids.js';
import type { VerificationRecord } from '../../src/core/verification.js';
import type { AppRecord, OutboxLease, OutboxMessage, Store } from '../../src/store/store.js';

interface Fixture {
  store: Store;
  app: AppRecord;
  verification(overrides?: Partial<VerificationRecord>): VerificationRecord;
}

const LEASE = 30_000;
/** Far enough ahead that every message any test left behind is due (and its lease over). */
const SWEEP_AHEAD = 400 * 86_400_000;

/**
 * The Store contract for the durable outbox (src/store/outbox.ts, decisions 3 and 20). Called from
 * `storeContract` (contract.ts), so it runs on SQLite, Redis and Redis Cluster alike.
 */
export function outboxContract(fixture: () => Fixture): void {
  describe('outbox', () => {
    const T = Date.now();

    function message(v: Pick<VerificationRecord, 'id' | 'appId' | 'expiresAt'>, overrides: Partial<OutboxMessage> = {}): OutboxMessage {
      return { id: newId('msg', T), appId: v.appId, reference: v.id, payload: `sealed-${Math.random()}`, send: 1, dueAt: T, expiresAt: v.expiresAt, ...overrides };
    }

    /** Claims everything due (every test's leftovers included) and completes it, so each test starts empty. */
    async function sweep(store: Store): Promise<void> {
      for (let round = 0; round < 20; round++) {
        const leases = await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 100, 'sweep');
        if (leases.length === 0) return;
        await Promise.all(leases.map((lease) => store.completeOutbox(lease)));
      }
      assert.fail('the outbox did not empty within 20 sweeps');
    }

    function mine(leases: OutboxLease[], reference: string): OutboxLease[] {
      return leases.filter((lease) => lease.reference === reference);
    }

    it("a create its destination's rules refuse leaves no message behind", async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const to = `+1557${Math.floor(Math.random() * 1e7).toString().padStart(7, '0')}`;
      const rule = { cooldownMs: 30_000, window: null };
      const first = verification({ to, createdAt: T });
      await store.createVerification(first, T, message(first), rule);
      const refused = verification({ to, createdAt: T + 1 });
      await assert.rejects(store.createVerification(refused, T + 1, message(refused), rule), /less than 30 s ago/);
      const leases = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      assert.deepEqual(leases.map((lease) => lease.reference), [first.id]);
      await Promise.all(leases.map((lease) => store.completeOutbox(lease)));
      assert.deepEqual(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'a'), []);
    });

    it('writes the message with its verification; one claim leases it until the lease ends', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const v = verification({ createdAt: T });
      const m = message(v);
      await store.createVerification(v, T, m);

      const [lease, ...rest] = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      assert.equal(rest.length, 0);
      assert.ok(lease);
      assert.deepEqual(
        { id: lease.id, appId: lease.appId, reference: lease.reference, payload: lease.payload, send: lease.send, expiresAt: lease.expiresAt, tries: lease.tries, lastError: lease.lastError },
        { id: m.id, appId: v.appId, reference: v.id, payload: m.payload, send: 1, expiresAt: v.expiresAt, tries: 1, lastError: null },
      );
      assert.equal(lease.leaseUntil, T + 10 + LEASE);
      // Leased: nobody else gets it before the lease ends.
      assert.deepEqual(await store.claimOutbox(T + 20, LEASE, 10, 'b'), []);
      assert.deepEqual(await store.claimOutbox(T + 10 + LEASE - 1, LEASE, 10, 'b'), []);
      // A holder that died: after the lease the message is claimable again, one more try counted.
      const again = await store.claimOutbox(T + 10 + LEASE, LEASE, 10, 'b');
      assert.equal(again.length, 1);
      assert.equal(again[0]!.tries, 2);
      // The first holder lost it: it can no longer complete, reschedule or renew it.
      assert.equal(await store.completeOutbox(lease), false);
      assert.equal(await store.rescheduleOutbox(lease, T, 'late', T + 10 + LEASE), false);
      assert.equal(await store.renewOutbox(lease, LEASE, T + 10 + LEASE), false);
      assert.equal(await store.completeOutbox(again[0]!), true);
      assert.deepEqual(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'c'), []);
    });

    it('a message written already leased is held by its writer until the lease ends, then claimed as a second try', async () => {
      const { store, app, verification } = fixture();
      await sweep(store);
      const v = verification({ createdAt: T });
      const held = message(v, { lease: { token: 'writer', until: T + LEASE } });
      await store.createVerification(v, T, held);
      const reference = newId('tw', T);
      const other: OutboxMessage = { id: newId('msg', T), appId: app.id, reference, payload: 'tw', send: 1, dueAt: T, expiresAt: T + 3_600_000, lease: { token: 'writer', until: T + LEASE } };
      await store.enqueueOutbox(other, T);
      // The writer's lease, as a claim at T would have left it: what it completes, renews or reschedules.
      const writers = [held, other].map(({ lease, ...m }): OutboxLease => ({ ...m, tries: 1, lastError: null, leaseToken: lease!.token, leaseUntil: lease!.until }));
      assert.deepEqual(await store.claimOutbox(T + 10, LEASE, 10, 'b'), [], 'nobody else gets a message leased at its write');
      assert.deepEqual(await store.claimOutbox(T + LEASE - 1, LEASE, 10, 'b'), []);
      assert.equal(await store.renewOutbox(writers[1]!, LEASE, T + 1_000), true, 'its writer holds the lease');
      writers[1]!.leaseUntil = T + 1_000 + LEASE;
      // A writer that died before sending: after the lease the message is claimed, its second try.
      const again = await store.claimOutbox(T + LEASE, LEASE, 10, 'b');
      assert.deepEqual(
        again.map((lease) => [lease.reference, lease.tries, lease.payload, lease.lastError]),
        [[v.id, 2, held.payload, null]],
      );
      assert.deepEqual(again[0]!.verification, { status: 'pending', sends: 1 });
      assert.equal(await store.completeOutbox(writers[0]!), false, 'the writer lost it to the claim');
      assert.equal(await store.completeOutbox(again[0]!), true);
      assert.equal(await store.completeOutbox(writers[1]!), true, 'a renewed lease stays its writer');
      assert.deepEqual(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'c'), []);
    });

    it('a delivery report with the lease of the message it is about wipes that message in the same step, applied or not', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const reported = verification({ createdAt: T });
      const stale = verification({ createdAt: T });
      for (const v of [reported, stale]) await store.createVerification(v, T, message(v));
      const leases = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      const leaseOf = (v: VerificationRecord) => mine(leases, v.id)[0]!;
      const after = await store.recordDelivery(reported.appId, reported.id, { status: 'sent', provider: 'sms:hook', providerMessageId: 'pm-1', send: 1 }, T + 20, leaseOf(reported));
      assert.deepEqual([after?.deliveryStatus, after?.providerMessageId], ['sent', 'pm-1']);
      // A report for another send does not apply; the message it names is done with all the same.
      const unchanged = await store.recordDelivery(stale.appId, stale.id, { status: 'sent', send: 2 }, T + 20, leaseOf(stale));
      assert.equal(unchanged?.deliveryStatus, 'queued');
      assert.equal(await store.completeOutbox(leaseOf(reported)), false, 'already wiped');
      assert.equal(await store.completeOutbox(leaseOf(stale)), false, 'already wiped');
      assert.deepEqual(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'b'), [], 'nothing left to claim once the leases end');
    });

    it('a verification created without a message has none in the outbox', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      await store.createVerification(verification({ createdAt: T }), T);
      assert.deepEqual(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'a'), []);
    });

    it('reschedules with the error kept and the tries counted; renews a held lease', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const v = verification({ createdAt: T });
      await store.createVerification(v, T, message(v));
      const [first] = await store.claimOutbox(T, LEASE, 10, 'a');
      assert.ok(first);
      assert.equal(await store.renewOutbox(first, LEASE, T + 5_000), true);
      first.leaseUntil = T + 5_000 + LEASE;
      assert.deepEqual(await store.claimOutbox(T + LEASE + 1, LEASE, 10, 'b'), [], 'a renewed lease is still held after the first lease would have ended');
      assert.equal(await store.rescheduleOutbox(first, T + 60_000, 'twilio-main: HTTP 503', T + 6_000), true);
      assert.deepEqual(await store.claimOutbox(T + 59_999, LEASE, 10, 'b'), [], 'not due before the retry time');
      const [second] = await store.claimOutbox(T + 60_000, LEASE, 10, 'b');
      assert.equal(second?.tries, 2);
      assert.equal(second?.lastError, 'twilio-main: HTTP 503');
      assert.equal(second?.id, first.id);
      assert.equal(await store.completeOutbox(second!), true);
    });

    it('a resend replaces the waiting message with the new send; a refused resend writes nothing', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const v = verification({ createdAt: T });
      const m1 = message(v);
      await store.createVerification(v, T, m1);
      const policy = { maxSends: 5, cooldownMs: 30_000, ttlMs: 600_000 };
      const m2 = message(v, { id: newId('msg', T + 31_000), payload: 'second', dueAt: T + 31_000, expiresAt: T + 31_000 + 600_000 });
      const resent = await store.resendVerification(v.appId, v.id, { codeHash: 'hash-2', codeKid: 'k1' }, policy, T + 31_000, m2);
      assert.equal(resent?.ok, true);
      const refused = await store.resendVerification(v.appId, v.id, { codeHash: 'hash-3', codeKid: 'k1' }, policy, T + 32_000, message(v, { id: newId('msg', T + 32_000), payload: 'third' }));
      assert.equal(refused && !refused.ok && refused.reason, 'cooldown');

      const leases = mine(await store.claimOutbox(T + 40_000, LEASE, 10, 'a'), v.id);
      assert.equal(leases.length, 1, 'one waiting message per verification');
      assert.equal(leases[0]!.id, m2.id);
      assert.equal(leases[0]!.payload, 'second');
      assert.equal(leases[0]!.send, 2, 'the store sets the send it wrote');
      assert.equal(leases[0]!.expiresAt, T + 31_000 + 600_000);
      assert.equal(await store.completeOutbox(leases[0]!), true);
      assert.deepEqual(mine(await store.claimOutbox(T + SWEEP_AHEAD, LEASE, 10, 'b'), v.id), []);
    });

    it('a create that supersedes a pending verification deletes its waiting message', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const first = verification({ createdAt: T });
      await store.createVerification(first, T, message(first));
      const second = verification({ to: first.to, createdAt: T + 1 });
      const m = message(second, { id: newId('msg', T + 1) });
      const created = await store.createVerification(second, T + 1, m);
      assert.equal(created.supersededId, first.id);
      const leases = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      assert.deepEqual(
        leases.map((lease) => lease.reference),
        [second.id],
      );
      await store.completeOutbox(leases[0]!);
    });

    it('queues a message of a reference that is no verification', async () => {
      const { store, app } = fixture();
      await sweep(store);
      const reference = newId('tw', T);
      const m: OutboxMessage = { id: newId('msg', T), appId: app.id, reference, payload: 'tw-payload', send: 1, dueAt: T + 5_000, expiresAt: T + 3_600_000 };
      await store.enqueueOutbox(m, T);
      assert.deepEqual(await store.claimOutbox(T + 4_999, LEASE, 10, 'a'), [], 'not due yet');
      const [lease] = await store.claimOutbox(T + 5_000, LEASE, 10, 'a');
      assert.equal(lease?.reference, reference);
      assert.equal(lease?.payload, 'tw-payload');
      assert.equal(lease?.appId, app.id);
      assert.equal(lease?.verification, undefined, 'no verification state for a reference that is no verification');
      assert.equal(await store.completeOutbox(lease!), true);
      assert.equal(await store.completeOutbox(lease!), false, 'completing twice finds nothing');
    });

    it("a claim reports the verification's stored status and sends: pending, canceled, failed", async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const pending = verification({ createdAt: T });
      const canceled = verification({ createdAt: T });
      const failed = verification({ createdAt: T });
      for (const v of [pending, canceled, failed]) await store.createVerification(v, T, message(v));
      assert.equal((await store.cancelVerification(canceled.appId, canceled.id, T + 1))?.ok, true);
      await store.recordDelivery(failed.appId, failed.id, { status: 'failed', failureReason: 'every provider refused', failVerification: true, send: 1 }, T + 2);

      const leases = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      const state = (v: VerificationRecord) => mine(leases, v.id)[0]?.verification;
      assert.deepEqual(state(pending), { status: 'pending', sends: 1 });
      assert.deepEqual(state(canceled), { status: 'canceled', sends: 1 });
      assert.deepEqual(state(failed), { status: 'failed', sends: 1 });
      await Promise.all(leases.map((lease) => store.completeOutbox(lease)));
    });

    it("a claim reports a resent verification's new sends, also while the message waiting is the older send's", async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const v = verification({ createdAt: T });
      await store.createVerification(v, T, message(v));
      const policy = { maxSends: 5, cooldownMs: 30_000, ttlMs: 600_000 };
      // Resent without a message: the first send's message still waits, its verification is on send 2.
      assert.equal((await store.resendVerification(v.appId, v.id, { codeHash: 'hash-2', codeKid: 'k1' }, policy, T + 31_000))?.ok, true);
      const [older] = mine(await store.claimOutbox(T + 40_000, LEASE, 10, 'a'), v.id);
      assert.equal(older?.send, 1);
      assert.deepEqual(older?.verification, { status: 'pending', sends: 2 });
      assert.equal(await store.completeOutbox(older!), true);

      const m3 = message(v, { id: newId('msg', T + 62_000), dueAt: T + 62_000, expiresAt: T + 62_000 + 600_000 });
      assert.equal((await store.resendVerification(v.appId, v.id, { codeHash: 'hash-3', codeKid: 'k1' }, policy, T + 62_000, m3))?.ok, true);
      const [current] = mine(await store.claimOutbox(T + 62_000, LEASE, 10, 'b'), v.id);
      assert.equal(current?.id, m3.id);
      assert.equal(current?.send, 3);
      assert.deepEqual(current?.verification, { status: 'pending', sends: 3 });
      assert.equal(await store.completeOutbox(current!), true);
    });

    it("a claim reports null for a verification reference with no such verification of the message's app", async () => {
      const { store, app, verification } = fixture();
      await sweep(store);
      // Never created; created, but the message names another app; a `ve_` reference that is no well-formed id.
      const ghost = verification({ createdAt: T });
      const elsewhere = verification({ createdAt: T });
      await store.createVerification(elsewhere, T);
      const messages = [
        message(ghost),
        message(elsewhere, { appId: newId('app', T) }),
        { id: newId('msg', T), appId: app.id, reference: 've_not-a-verification-id', payload: 'x', send: 1, dueAt: T, expiresAt: T + 600_000 },
      ];
      for (const m of messages) await store.enqueueOutbox(m, T);

      const leases = await store.claimOutbox(T + 10, LEASE, 10, 'a');
      assert.deepEqual(leases.map((lease) => lease.reference).sort(), messages.map((m) => m.reference).sort());
      for (const lease of leases) assert.equal(lease.verification, null, lease.reference);
      await Promise.all(leases.map((lease) => store.completeOutbox(lease)));
    });

    it('claims oldest first, at most `limit`, and leases each message to one claimer under concurrency', async () => {
      const { store, verification } = fixture();
      await sweep(store);
      const made: string[] = [];
      for (let i = 0; i < 12; i++) {
        const v = verification({ createdAt: T });
        await store.createVerification(v, T, message(v, { dueAt: T + i }));
        made.push(v.id);
      }
      const oldest = await store.claimOutbox(T + 100, LEASE, 2, 'first');
      assert.deepEqual(
        oldest.map((lease) => lease.reference),
        made.slice(0, 2),
      );
      const racers = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimOutbox(T + 100, LEASE, 3, `racer-${i}`)));
      const claimed = racers.flat().map((lease) => lease.reference);
      assert.equal(claimed.length, 10, 'every remaining message claimed');
      assert.equal(new Set(claimed).size, 10, 'no message leased twice');
      await Promise.all([...oldest, ...racers.flat()].map((lease) => store.completeOutbox(lease)));
    });

    it('delivery reports for a send apply only to that send and never move its status back', async () => {
      const { store, verification } = fixture();
      const v = verification({ createdAt: T });
      await store.createVerification(v, T);
      const delivered = await store.recordDelivery(v.appId, v.id, { status: 'delivered', send: 1 }, T + 1);
      assert.equal(delivered?.deliveryStatus, 'delivered');
      const late = await store.recordDelivery(v.appId, v.id, { status: 'sent', provider: 'twilio-main', providerMessageId: 'SM1', send: 1 }, T + 2);
      assert.equal(late?.deliveryStatus, 'delivered', 'a late "sent" does not undo "delivered"');
      assert.equal(late?.deliveryProvider, null);
      const other = await store.recordDelivery(v.appId, v.id, { status: 'failed', failureReason: 'old message', send: 2 }, T + 3);
      assert.equal(other?.deliveryStatus, 'delivered', 'a report for another send changes nothing');
      assert.equal(other?.failureReason, null);
      const undelivered = await store.recordDelivery(v.appId, v.id, { status: 'undelivered', failureReason: 'carrier', send: 1 }, T + 4);
      assert.equal(undelivered?.deliveryStatus, 'undelivered', 'one final status may follow another');
      const unguarded = await store.recordDelivery(v.appId, v.id, { status: 'queued' }, T + 5);
      assert.equal(unguarded?.deliveryStatus, 'queued', 'without a send the report always applies');
    });
  });
}
