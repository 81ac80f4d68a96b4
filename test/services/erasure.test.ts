import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, TEST_SECRET, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';
import { runCli } from '../support/cli.js';

/**
 * Erasure of a person's data (docs/audit-and-events.md "Personal data") through `DELETE /v1/subjects/:id`
 * and `otpd erase`, on SQLite and Redis: their verifications and audit entries go, other people's stay,
 * and the erasure itself is recorded with the destination's hash only.
 */
let counter = 0;
function phone(): string {
  counter++;
  return `+1558${String(process.pid % 1000).padStart(3, '0')}${String(counter).padStart(4, '0')}`;
}

for (const backend of STORE_BACKENDS) {
  describe(`erasure (${backend.name})`, () => {
    let t: TestServer;
    let env: Record<string, string>;

    before(async () => {
      env = backend.env();
      t = await startTestServer(env);
      // Two verifications of one person in a row: the destination cooldown (abuse protection) is not under test.
      await t.server.services.apps.update('default', { destinationCooldown: 0 });
    });
    after(async () => {
      await t.close();
    });

    async function verification(to: string, approve: boolean): Promise<string> {
      const created = await t.request('POST', '/v1/verifications', { to });
      assert.equal(created.status, 201, created.text);
      if (approve) {
        const code = await t.codeFor(created.body.id);
        assert.equal((await t.request('POST', `/v1/verifications/${created.body.id}/check`, { code })).body.valid, true);
      }
      return created.body.id;
    }

    async function audit(query: string): Promise<any[]> {
      await t.server.services.audit.flush();
      const items: any[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await t.request('GET', `/v1/audit?limit=200${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.equal(page.status, 200, page.text);
        items.push(...page.body.items);
        cursor = page.body.nextCursor;
      } while (cursor !== null);
      return items;
    }

    it('DELETE /v1/subjects/:id erases the subject\'s verifications and audit entries, and only theirs', async () => {
      const person = phone();
      const email = `person.${counter}@Example.com`;
      const stranger = phone();
      assert.equal((await t.request('PUT', '/v1/subjects/user-1', { phone: person, email })).status, 201);
      const approved = await verification(person, true);
      const byEmail = await verification(email, false);
      const pending = await verification(person, false);
      const other = await verification(stranger, true);
      await t.server.services.drain();
      const hashOf = async (id: string) => (await audit(`&verificationId=${id}`))[0].destination.hash as string;
      const personHash = await hashOf(approved);
      const emailHash = await hashOf(byEmail);
      const strangerEntries = (await audit(`&verificationId=${other}`)).length;
      assert.ok(strangerEntries >= 2);

      const deleted = await t.request('DELETE', '/v1/subjects/user-1');
      assert.equal(deleted.status, 204, deleted.text);
      for (const id of [approved, byEmail, pending]) assert.equal((await t.request('GET', `/v1/verifications/${id}`)).status, 404, `${id} is gone`);
      assert.equal((await t.request('GET', `/v1/verifications/${other}`)).status, 200);
      assert.equal((await t.request('GET', '/v1/subjects/user-1')).status, 404);

      const everything = await audit('');
      const about = everything.filter((e) => e.destination && (e.destination.hash === personHash || e.destination.hash === emailHash));
      assert.deepEqual(about, [], 'no entry about the person is left');
      assert.equal((await audit(`&verificationId=${other}`)).length, strangerEntries, 'other people\'s entries stay');
      const erased = (await audit('&event=subject.erased')).filter((e) => e.details.destinationHash === personHash || e.details.destinationHash === emailHash);
      assert.equal(erased.length, 2, 'one erasure entry per destination, holding only its hash');
      const forPerson = erased.find((e) => e.details.destinationHash === personHash);
      assert.equal(forPerson.details.verifications, 2);
      assert.ok(forPerson.details.auditEntries >= 4);
      assert.equal(forPerson.destination, null);
      assert.ok(!JSON.stringify(everything).includes(person.slice(-4) + '"'), 'not even the masked number is left');

    });

    it('otpd erase --to removes a destination in every app', async () => {
      const person = phone();
      const id = await verification(person, true);
      await t.server.services.drain();
      await t.server.services.audit.flush();
      const result = (await runCli(['erase', '--to', person, '--json'], { ...env, OTPD_DATABASE: join(t.dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_LOG_LEVEL: 'silent' }));
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as { erased: { app: string; verifications: number; auditEntries: number }[] };
      const defaultApp = report.erased.find((r) => r.app === 'default')!;
      assert.equal(defaultApp.verifications, 1);
      assert.ok(defaultApp.auditEntries >= 2);
      assert.equal((await t.request('GET', `/v1/verifications/${id}`)).status, 404);
      assert.deepEqual(await audit(`&verificationId=${id}`), []);
      const bad = (await runCli(['erase', '--to', '12345'], { ...env, OTPD_DATABASE: join(t.dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET }));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /to: must be an E\.164 phone number/);
    });
  });
}
