import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NoopProvider } from '../../src/delivery/noop.js';
import { startTestServer, type TestServer } from '../helper.js';

describe('the noop provider (benchmarks, load tests)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('takes every message on every channel and hands back a message id', async () => {
    const provider = new NoopProvider();
    assert.deepEqual([...provider.channels].sort(), ['email', 'sms', 'voice', 'whatsapp']);
    const result = await provider.send({ verificationId: 've_x', appId: 'app_x', appName: 'x', channel: 'sms', to: '+15555550100', code: '123456', locale: null, text: 't', subject: 's', messageId: 'msg_1' });
    assert.deepEqual(result, { status: 'sent', providerMessageId: 'noop-msg_1' });
  });

  it('is selectable per app: the outbox runs to the end and nothing is sent anywhere', async () => {
    const { apiKey } = await server.server.services.apps.create('noop-app', { smsRoute: ['noop'] });
    const created = await server.request('POST', '/v1/verifications', { to: '+15555550177' }, { apiKey });
    assert.equal(created.status, 201);
    await server.server.services.drain();
    const after = await server.request('GET', `/v1/verifications/${created.body.id}`, undefined, { apiKey });
    assert.equal(after.body.delivery.status, 'sent');
    assert.equal(after.body.delivery.provider, 'noop');
    assert.equal(server.messages().filter((m) => m.verificationId === created.body.id).length, 0, 'the dev outbox got nothing');
  });

  it('is a reserved provider name in the config file', async () => {
    const { RESERVED_PROVIDER_NAMES } = await import('../../src/config-file.js');
    assert.ok(RESERVED_PROVIDER_NAMES.includes('noop'));
  });
});
