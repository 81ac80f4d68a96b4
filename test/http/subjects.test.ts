import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

/** Native `/v1/subjects/:id`: an app's users and their contact points, API key required, per app. */
for (const backend of STORE_BACKENDS) {
  describe(`native subjects (${backend.name})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend.env());
    });
    after(async () => server.close());

    it('PUT creates (201) and replaces (200); GET reads; DELETE removes (204), then 404', async () => {
      const created = await server.request('PUT', '/v1/subjects/user-1', { phone: '+15555550100', email: 'Person@Example.COM' });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(Object.keys(created.body).sort(), ['createdAt', 'email', 'id', 'phone', 'updatedAt']);
      assert.deepEqual([created.body.id, created.body.phone, created.body.email], ['user-1', '+15555550100', 'Person@example.com']);

      const replaced = await server.request('PUT', '/v1/subjects/user-1', { email: 'other@example.com' });
      assert.equal(replaced.status, 200, replaced.text);
      assert.deepEqual([replaced.body.phone, replaced.body.email], [null, 'other@example.com']);
      assert.equal(replaced.body.createdAt, created.body.createdAt);

      const read = await server.request('GET', '/v1/subjects/user-1');
      assert.equal(read.status, 200);
      assert.deepEqual(read.body, replaced.body);

      assert.equal((await server.request('DELETE', '/v1/subjects/user-1')).status, 204);
      const gone = await server.request('GET', '/v1/subjects/user-1');
      assert.equal(gone.status, 404);
      assert.match(gone.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal((await server.request('DELETE', '/v1/subjects/user-1')).status, 404);
    });

    it('bad input names the field and the rule', async () => {
      const cases: [unknown, string][] = [
        [{ phone: '5555550100' }, 'phone'],
        [{ email: 'not-an-address' }, 'email'],
        [{}, 'body'],
        [{ phone: '+15555550100', nickname: 'x' }, 'nickname'],
      ];
      for (const [body, field] of cases) {
        const response = await server.request('PUT', '/v1/subjects/user-2', body);
        assert.equal(response.status, 400, response.text);
        assert.ok(response.body.errors.some((error: { field: string }) => error.field === field), response.text);
      }
      const badId = await server.request('PUT', '/v1/subjects/has%20space', { phone: '+15555550100' });
      assert.equal(badId.status, 400, badId.text);
    });

    it('needs an API key, and one app never sees another app’s subjects', async () => {
      assert.equal((await server.request('GET', '/v1/subjects/user-3', undefined, { apiKey: null })).status, 401);
      assert.equal((await server.request('PUT', '/v1/subjects/user-3', { phone: '+15555550103' }, { apiKey: null })).status, 401);
      assert.equal((await server.request('PUT', '/v1/subjects/user-3', { phone: '+15555550103' })).status, 201);
      const other = await server.server.services.apps.create(`subjects-${backend.name}-${process.pid}`, {});
      assert.equal((await server.request('GET', '/v1/subjects/user-3', undefined, { apiKey: other.apiKey })).status, 404);
      assert.equal((await server.request('DELETE', '/v1/subjects/user-3', undefined, { apiKey: other.apiKey })).status, 404);
      assert.equal((await server.request('GET', '/v1/subjects/user-3')).status, 200);
    });
  });
}
