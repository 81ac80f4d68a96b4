import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterEach, describe, it, mock } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { accessLogOf, createLogger, writtenOncePerTurn } from '../src/logger.js';

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

describe('stdout', () => {
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  it('hands the lines of one event-loop turn to the target in one write, in order, at the end of the turn', async () => {
    const writes: string[] = [];
    const stream = writtenOncePerTurn({ write: (text: string) => writes.push(text) });
    stream.write('a\n');
    stream.write('b\n');
    stream.write('c\n');
    assert.deepEqual(writes, [], 'nothing is written within the turn');
    await turn();
    assert.deepEqual(writes, ['a\nb\nc\n']);
    stream.write('d\n');
    await turn();
    await turn();
    assert.deepEqual(writes, ['a\nb\nc\n', 'd\n'], 'a later turn\'s line is written on its own, without waiting for more');
    stream.flush();
    assert.equal(writes.length, 2, 'an empty flush writes nothing');
  });

  it('answers pino\'s logger.flush(callback) once the lines are written', async () => {
    const writes: string[] = [];
    const logger = pino({ base: null, timestamp: false }, writtenOncePerTurn({ write: (text: string) => writes.push(text) }));
    logger.info('one');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('flush never called back')), 2_000);
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.deepEqual(writes, ['{"level":30,"msg":"one"}\n']);
  });

  // A child process with the real stdout: what it logged just before it exits must arrive.
  const child = async (body: string) => {
    const script = `import { createLogger } from ${JSON.stringify(new URL('../src/logger.ts', import.meta.url).pathname)};\nconst logger = createLogger('info');\n${body}`;
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 20_000 });
      return { code: 0, stdout };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string };
      return { code: failed.code ?? -1, stdout: failed.stdout ?? '' };
    }
  };
  const messages = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { msg: string }).msg);

  it('writes what was logged before process.exit in the same turn', async () => {
    const result = await child(`logger.info('one'); logger.warn('two'); process.exit(3);`);
    assert.equal(result.code, 3);
    assert.deepEqual(messages(result.stdout), ['one', 'two']);
  });

  it('writes what was logged before an uncaught exception ends the process', async () => {
    const result = await child(`setImmediate(() => { logger.error('before the crash'); throw new Error('boom'); });`);
    assert.equal(result.code, 1);
    assert.deepEqual(messages(result.stdout), ['before the crash']);
  });
});
