import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { accessLogOf, createLogger } from '../src/logger.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

describe('access log', () => {
  afterEach(() => mock.restoreAll());

  it('writes the same bytes as pino would for the same fields', () => {
    mock.method(Date, 'now', () => 1_732_250_000_000);
    const ours = new Capture();
    const reference = new Capture();
    const access = accessLogOf(createLogger('info', ours));
    const logger = pino({ level: 'info', base: { pid: process.pid } }, reference);
    for (const url of ['/v1/verifications/ve_1/check', '/x?a="b"&c=\\d', '/p\u00e9?q=\t', `/${'x'.repeat(150)}"`]) {
      for (const ip of ['127.0.0.1', '::1', undefined]) {
        for (const ms of [0, 1.3, Number.NaN]) {
          access('req_1', 'POST', url, ip, 200, ms);
          logger.info({ reqId: 'req_1', method: 'POST', url, ip, statusCode: 200, ms }, 'request');
        }
      }
    }
    assert.ok(ours.text.length > 0);
    assert.equal(ours.text, reference.text);
  });

  it('follows the log level', () => {
    const capture = new Capture();
    accessLogOf(createLogger('warn', capture))('req_1', 'GET', '/', '127.0.0.1', 200, 1);
    assert.equal(capture.text, '');
  });
});
