import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import newman, { type Summary } from 'newman';
import { startTestServer, type TestServer } from '../helper.js';
import { STORE_BACKENDS } from '../support/backends.js';

const COLLECTION = new URL('../../docs/otpd.postman_collection.json', import.meta.url).pathname;

function runCollection(envVar: Array<{ key: string; value: string }>): Promise<Summary> {
  return new Promise((resolve, reject) => {
    newman.run({ collection: COLLECTION, envVar, reporters: [], timeout: 60_000, timeoutRequest: 10_000 }, (error, summary) => (error ? reject(error) : resolve(summary)));
  });
}

function describeFailures(summary: Summary): string {
  return summary.run.failures.map((f) => `${f.source?.name ?? '?'}: ${f.error.test ?? f.error.name}: ${f.error.message}`).join('\n');
}

/**
 * docs/otpd.postman_collection.json, run by newman against a real otpd: the collection's own `pm.test`
 * scripts assert statuses and shapes. newman cannot read the dev outbox, so this test creates the
 * verification for folder 2 and passes its id, destination and code as variables, as a person would
 * after reading the message.
 */
for (const backend of STORE_BACKENDS) describe(`Postman collection (newman, ${backend.name})`, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(backend.env());
  });
  after(() => server.close());

  it('passes every request and assertion against a running otpd', async () => {
    const received = await server.request('POST', '/v1/verifications', { to: '+15555550401' });
    assert.equal(received.status, 201);
    const code = await server.codeFor(received.body.id);
    const summary = await runCollection([
      { key: 'baseUrl', value: server.url },
      { key: 'apiKey', value: server.apiKey },
      { key: 'receivedId', value: received.body.id },
      { key: 'receivedTo', value: '+15555550401' },
      { key: 'receivedCode', value: code },
    ]);
    assert.ok(!summary.run.error, String(summary.run.error));
    assert.deepEqual(summary.run.failures.length, 0, describeFailures(summary));
    assert.equal(summary.run.stats.requests.total, 20);
    assert.equal(summary.run.stats.requests.failed, 0);
    assert.equal(summary.run.stats.assertions.total, 47, "every pm.test of the collection ran");
    const skipped = summary.run.executions.flatMap((e) => (e.assertions ?? []).filter((a) => a.skipped).map((a) => `${e.item.name}: ${a.assertion}`));
    assert.deepEqual(skipped, []);
    const after = await server.request('GET', `/v1/verifications/${received.body.id}`);
    assert.equal(after.body.status, 'approved', 'the collection approved the verification it was given');
  });

  it('fails where otpd answers differently: with an unknown API key its assertions fail', async () => {
    const summary = await runCollection([
      { key: 'baseUrl', value: server.url },
      { key: 'apiKey', value: 'otpd_not_a_valid_key_000000' },
    ]);
    assert.ok(summary.run.failures.length > 10, describeFailures(summary));
    assert.match(describeFailures(summary), /Create a verification: answers 201/);
  });
});
