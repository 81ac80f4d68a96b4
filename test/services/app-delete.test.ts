import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

/**
 * Deleting an app deletes what it kept about people and secrets (docs/audit-and-events.md "Personal
 * data"): its subjects, its authenticator factors and their user-id mappings, its webhook secret. Another
 * app's records stay. On SQLite and Redis.
 */
for (const backend of STORE_BACKENDS) {
  describe(`app deletion (${backend.name})`, () => {
    let t: TestServer;

    before(async () => {
      t = await startTestServer(backend.env());
    });
    after(async () => {
      await t.close();
    });

    /** Ids of the live records of a namespace, all pages. */
    async function recordIds(namespace: string): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const result = await t.server.store.listRecords(namespace, cursor, 100, Date.now());
        ids.push(...result.items.map((item) => item.id));
        if (result.nextCursor === undefined) break;
        cursor = result.nextCursor;
      }
      return [...new Set(ids)];
    }

    it('removes the app\'s subjects, factors, user keys and webhook secret, and only the app\'s', async () => {
      const services = t.server.services;
      const doomed = (await services.apps.create(`doomed-${backend.name}`, {})).app;
      const kept = (await services.apps.create(`kept-${backend.name}`, {})).app;
      const factors: Record<string, string> = {};
      for (const app of [doomed, kept]) {
        // More than one listing page of subjects, so the sweep pages through them.
        for (let i = 0; i < 120; i++) await services.subjects.put(app, `user-${i}`, { phone: `+1555${String(4_000_000 + i)}` });
        factors[app.id] = (await services.factors.enrol(app, { type: 'totp', account: 'alice@example.com' })).factor.id;
        await services.factors.issueUserKey(app, 'alice');
        await services.events.webhookSecret(app);
      }
      const owned = async (appId: string) => ({
        subjects: (await recordIds('subject')).filter((id) => id.startsWith(`${appId}:`)).length,
        factor: (await recordIds('factor')).includes(factors[appId]!),
        userKeys: (await recordIds('factor-user-key')).filter((id) => id.startsWith(`${appId}:`)).length,
        webhookSecret: (await recordIds('webhook-secret')).includes(appId),
      });
      assert.deepEqual(await owned(doomed.id), { subjects: 120, factor: true, userKeys: 1, webhookSecret: true });

      await services.apps.delete(doomed.name);

      assert.deepEqual(await owned(doomed.id), { subjects: 0, factor: false, userKeys: 0, webhookSecret: false });
      assert.deepEqual(await owned(kept.id), { subjects: 120, factor: true, userKeys: 1, webhookSecret: true });
      assert.equal((await services.subjects.find(kept, 'user-7'))?.phone, '+15554000007');
    });
  });
}
