import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import * as seed001 from '../../../src/http/dialects/time-window-001/errors.js';
import * as seed003 from '../../../src/http/dialects/user-otp-003/errors.js';
import { startTestServer, type TestServer } from '../../helper.js';

/**
 * The 500 answers of seeds 001 and 003 (an unexpected error inside otpd) in the seeds' envelopes, with
 * no stack trace; and seed 001's traceID being the request id written in the log line.
 */
describe('seeds 001 and 003: server errors', () => {
  const boom = Object.assign(new Error('boom'), { stack: 'Error: boom\n    at secretFunction (/srv/otpd/src/x.ts:1:1)' });

  async function answer(handler: (error: unknown, request: any, reply: any) => unknown) {
    const app = Fastify({ logger: false });
    app.setErrorHandler(handler);
    app.post('/v1/otp', async () => {
      throw boom;
    });
    const response = await app.inject({ method: 'POST', url: '/v1/otp', payload: {} });
    await app.close();
    return response;
  }

  it('seed 001 answers 500 with error-message and error-details (decisions 15), no stack trace', async () => {
    for (const operation of ['GENERATE', 'VALIDATE'] as const) {
      const response = await answer((error, request, reply) => seed001.sendFailure(request, reply, seed001.failureFromError(error), operation, error));
      assert.equal(response.statusCode, 500);
      const body = response.json();
      assert.deepEqual(Object.keys(body), ['timestamp', 'status', 'errorCode', 'error-message', 'traceID', 'error-details', 'path']);
      assert.equal(body.status, 500);
      assert.equal(body['error-message'], 'Internal Server Error');
      assert.equal(body['error-details'], 'Internal Server Error');
      assert.equal(body.path, '/v1/otp');
      assert.doesNotMatch(response.body, /secretFunction|boom/);
    }
  });

  it('seed 003 answers 500 with {success: false, message}, no stack trace', async () => {
    const response = await answer((error, request, reply) => seed003.sendFailure(request, reply, seed003.failureFromError(error), error));
    assert.equal(response.statusCode, 500);
    assert.deepEqual(response.json(), { success: false, message: 'An error occured processing the request' });
    assert.doesNotMatch(response.body, /secretFunction|boom/);
  });
});

describe('seed 001: traceID is the request id in the logs', () => {
  let server: TestServer;
  const lines: string[] = [];
  before(async () => {
    const logStream = new PassThrough();
    logStream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    server = await startTestServer({ OTPD_LOG_LEVEL: 'info' }, { logStream });
  });
  after(() => server.close());

  it('a rule failure carries the traceID of its log line', async () => {
    const response = await server.request('POST', '/v1/otp', { operationType: 'GENERATE', channel: 'Web', startTime: '2022-12-12 19:04:30', duration: 180, digit: 6, mobile: '8777496061' }, { apiKey: null });
    assert.equal(response.status, 422);
    const traceID = response.body.traceID;
    assert.ok(typeof traceID === 'string' && traceID.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const logged = lines.map((line) => JSON.parse(line) as { reqId?: string; url?: string; statusCode?: number }).filter((entry) => entry.reqId === traceID);
    assert.ok(logged.some((entry) => entry.statusCode === 422), `no log line with reqId ${traceID}`);
  });
});
