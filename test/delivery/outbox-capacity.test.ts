import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../helper.js';
import { WEBHOOK_SECRET } from '../support/fake-providers.js';
import { FAST_OUTBOX, startWithConfig } from './setup.js';

/**
 * The outbox worker sends at most `outbox.concurrency` messages at once (32 here). A message created while a slot is free is written
 * leased to this process and sent from memory, never claimed; one created while every slot is taken waits
 * for a claim. A poll that finds every slot taken must not stop the worker: once the slow sends finish,
 * the messages still waiting go out too.
 */
describe('the outbox worker with every send slot taken', () => {
  const held: ServerResponse[] = [];
  let received = 0;
  let release = false;
  const provider = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on('end', () => {
      received++;
      if (release) response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"sent"}');
      else held.push(response);
    });
  });
  let server: TestServer;
  before(async () => {
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const address = provider.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    server = await startWithConfig(
      `${FAST_OUTBOX}  concurrency: 32
providers:
  slow:
    type: webhook
    url: http://127.0.0.1:${port}/messages
    secret: ${WEBHOOK_SECRET}
    timeoutSeconds: 30
`,
      'sqlite',
    );
  });
  after(async () => {
    for (const response of held.splice(0)) response.end();
    await server.close();
    provider.closeAllConnections();
    await new Promise((resolve) => provider.close(resolve));
  });

  it('sends the first 32 without a claim, and the waiting messages by claim once the held ones are answered', async () => {
    const { store } = server.server;
    const claimed: string[] = [];
    const claim = store.claimOutbox.bind(store);
    store.claimOutbox = async (...args) => {
      const leases = await claim(...args);
      claimed.push(...leases.map((lease) => lease.reference));
      return leases;
    };
    const { app } = await server.server.services.apps.create('slow-provider', { smsRoute: ['slow'] });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await server.server.services.verifications.create(app, { to: `+1555777${String(i).padStart(4, '0')}` }, { keyId: 'capacity' })).id);
    // Every slot is taken by a held send; polls (every 50 ms) meanwhile find no free slot.
    const deadline = Date.now() + 5_000;
    while (held.length < 32 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(held.length, 32, 'the worker should fill its 32 send slots');
    await new Promise((resolve) => setTimeout(resolve, 300));
    release = true;
    for (const response of held.splice(0)) response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"sent"}');
    const sentBy = Date.now() + 5_000;
    let sent = 0;
    while (Date.now() < sentBy) {
      sent = 0;
      for (const id of ids) if ((await server.server.services.verifications.get(app, id)).deliveryStatus === 'sent') sent++;
      if (sent === ids.length) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(sent, ids.length, `${sent} of ${ids.length} sent (provider saw ${received} requests)`);
    assert.deepEqual(claimed.sort(), ids.slice(32).sort(), 'only the messages created with every slot taken are claimed');
  });
});
