import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

/** `GET /v1/audit` over a real server, on SQLite and Redis (docs/audit-and-events.md). */
let counter = 0;
function phone(): string {
  counter++;
  return `+1557${String(process.pid % 1000).padStart(3, '0')}${String(counter).padStart(4, '0')}`;
}

for (const backend of STORE_BACKENDS) {
  describe(`audit API (${backend.name})`, () => {
    let t: TestServer;
    let keyId: string;

    before(async () => {
      t = await startTestServer(backend.env());
      keyId = (await t.server.services.apps.authenticate(t.apiKey))!.keyId;
    });
    after(async () => {
      await t.close();
    });

    /** Entries of one verification, oldest first, once `count` are there (bounded wait: writes are off the request path). */
    async function entriesOf(id: string, count: number): Promise<any[]> {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const page = await t.request('GET', `/v1/audit?verificationId=${id}`);
        assert.equal(page.status, 200, page.text);
        if (page.body.items.length >= count || Date.now() > deadline) return page.body.items.reverse();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }

    it('records create, send, failed and approved checks with key id, IP, user agent and request id — never the code or the number', async () => {
      const to = phone();
      const created = await t.request('POST', '/v1/verifications', { to }, { headers: { 'user-agent': 'shop-backend/1.0', 'x-request-id': 'req-create-1' } });
      const id = created.body.id as string;
      const code = await t.codeFor(id);
      await t.request('POST', `/v1/verifications/${id}/check`, { code: code === '000000' ? '111111' : '000000' }, { headers: { 'user-agent': 'shop-backend/1.0', 'x-request-id': 'req-check-1' } });
      await t.request('POST', `/v1/verifications/${id}/check`, { code }, { headers: { 'x-request-id': 'req-check-2' } });
      const entries = await entriesOf(id, 4);
      const events = entries.map((e) => e.event);
      assert.deepEqual(
        events.filter((e) => !e.startsWith('delivery.')),
        ['verification.created', 'check.failed', 'verification.approved'],
      );
      assert.ok(events.includes('delivery.sent') || events.includes('delivery.delivered'), `a send is recorded: ${events.join(', ')}`);
      const [create] = entries;
      assert.equal(create.resource, id);
      assert.equal(create.keyId, keyId);
      assert.equal(create.ip, '127.0.0.1');
      assert.equal(create.userAgent, 'shop-backend/1.0');
      assert.equal(create.requestId, 'req-create-1');
      assert.equal(create.destination.masked, to.slice(0, 2) + '*'.repeat(to.length - 6) + to.slice(-4));
      assert.match(create.destination.hash, /^[\w-]{43}$/);
      assert.equal(create.details.channel, 'sms');
      assert.equal(entries.find((e) => e.event === 'check.failed').details.attempts, 1);
      assert.equal(entries.find((e) => e.event === 'verification.approved').requestId, 'req-check-2');
      const text = JSON.stringify(entries);
      assert.ok(!text.includes(code), 'no code in the audit log');
      assert.ok(!text.includes(to), 'no plain destination in the audit log');
      assert.equal(new Set(entries.map((e) => e.destination?.hash).filter(Boolean)).size, 1, 'one person, one hash');
    });

    it('filters by event and time, pages with a cursor, newest first', async () => {
      const since = new Date().toISOString();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await t.request('POST', '/v1/verifications', { to: phone() })).body.id);
      const until = new Date(Date.now() + 1).toISOString();
      await entriesOf(ids[4]!, 1);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `/v1/audit?event=verification.created&since=${since}&until=${until}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = await t.request('GET', query);
        assert.equal(page.status, 200, page.text);
        assert.ok(page.body.items.length <= 2);
        seen.push(...page.body.items.map((e: any) => e.resource));
        cursor = page.body.nextCursor;
        pages++;
      } while (cursor !== null && pages < 10);
      assert.deepEqual(seen, [...ids].reverse());
      const later = await t.request('GET', `/v1/audit?event=verification.created&since=${until}`);
      assert.deepEqual(later.body.items.filter((e: any) => ids.includes(e.resource)), []);
    });

    it('refuses bad filters naming the field and the rule', async () => {
      const cases: [string, string][] = [
        ['/v1/audit?event=code.guessed', 'event'],
        ['/v1/audit?since=yesterday', 'since'],
        ['/v1/audit?limit=0', 'limit'],
        ['/v1/audit?limit=1000', 'limit'],
        ['/v1/audit?limit=ten', 'limit'],
        ['/v1/audit?cursor=not-mine', 'cursor'],
        ['/v1/audit?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z', 'until'],
        ['/v1/audit?colour=blue', 'colour'],
      ];
      for (const [path, field] of cases) {
        const response = await t.request('GET', path);
        assert.equal(response.status, 400, `${path}: ${response.text}`);
        assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        assert.ok(response.body.errors.some((e: { field: string }) => e.field === field), `${path} names ${field}: ${response.text}`);
      }
      assert.equal((await t.request('GET', '/v1/audit', undefined, { apiKey: null })).status, 401);
    });

    it('shows an app only its own entries', async () => {
      const other = await t.server.services.apps.create(`audit-other-${backend.name}`, {});
      const mine = (await t.request('POST', '/v1/verifications', { to: phone() })).body.id as string;
      await entriesOf(mine, 1);
      const theirs = await t.request('GET', `/v1/audit?verificationId=${mine}`, undefined, { apiKey: other.apiKey });
      assert.equal(theirs.status, 200);
      assert.deepEqual(theirs.body.items, []);
      const created = await t.request('GET', '/v1/audit?event=app.created', undefined, { apiKey: other.apiKey });
      assert.deepEqual(created.body.items.map((e: any) => e.resource), [other.app.id], 'its own creation is its first entry');
    });
  });
}
