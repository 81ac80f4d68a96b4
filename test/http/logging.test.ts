import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { safeUrl } from '../../src/http/logging.js';
import { startTestServer, type TestServer } from '../helper.js';

/** Collects every JSON line the server's logger writes. */
class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
  /**
   * The logs without the fields that are numbers or random ids by construction (time, pid, request id,
   * duration), where a 6-digit code could appear by chance and make the search below fail at random.
   */
  searchable(): string {
    return this.lines()
      .map(({ time: _time, pid: _pid, reqId: _reqId, ms: _ms, ...rest }) => JSON.stringify(rest))
      .join('\n');
  }
  lines(): Array<Record<string, any>> {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, any>);
  }
}

describe('logs', () => {
  const capture = new LogCapture();
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ OTPD_LOG_LEVEL: 'trace' }, { logStream: capture });
  });
  after(() => server.close());

  it('hold no code, key or full destination after real traffic, and mask destinations in URLs', async () => {
    const phone = '+15555550191';
    const email = 'alice.logging@example.com';
    const sms = await server.request('POST', '/v1/verifications', { to: phone });
    const mail = await server.request('POST', '/v1/verifications', { to: email });
    assert.equal(sms.status, 201);
    assert.equal(mail.status, 201);
    const smsCode = await server.codeFor(sms.body.id);
    const mailCode = await server.codeFor(mail.body.id);
    const wrong = smsCode === '000000' ? '111111' : '000000';
    await server.request('POST', `/v1/verifications/${sms.body.id}/check`, { code: wrong });
    await server.request('POST', '/v1/verifications/check', { to: email, code: mailCode });
    await server.request('POST', `/v1/verifications/${sms.body.id}/check`, { code: smsCode });
    // Codes and destinations in URLs: a dialect's path segment, query parameters, an unknown route.
    await server.request('GET', `/otp/v1.0/appkeys/nokey/codes/${smsCode}/verification`, undefined, { apiKey: null });
    await server.request('GET', `/nowhere?otp=${smsCode}&to=${encodeURIComponent(phone)}&mobile=${encodeURIComponent(phone)}&keep=1`, undefined, { apiKey: null });
    await server.request('GET', '/v1/verifications/ve_unknown', undefined, { headers: { 'x-api-key': server.apiKey }, apiKey: null });
    await server.server.services.drain();

    const lines = capture.lines();
    const requests = lines.filter((line) => line.msg === 'request');
    assert.ok(requests.length >= 8, `only ${requests.length} request lines`);
    for (const line of requests) assert.match(String(line.reqId), /^req_/, JSON.stringify(line));
    const unknownRoute = requests.find((line) => String(line.url).startsWith('/nowhere'));
    assert.equal(unknownRoute?.url, `/nowhere?otp=***&to=${encodeURIComponent('+1******0191')}&mobile=${encodeURIComponent('+1******0191')}&keep=1`);
    assert.ok(requests.some((line) => line.url === '/otp/v1.0/appkeys/***/codes/***/verification'), 'seed 004 carries its app key and the code in the path');

    const searchable = capture.searchable();
    for (const secret of [smsCode, mailCode, server.apiKey, phone, email]) {
      assert.ok(!searchable.includes(secret), `"${secret}" appears in the logs`);
    }
  });

  it('mask `to` and other destination fields, and remove code and secret fields, in anything logged', () => {
    capture.text = '';
    server.server.logger.info(
      {
        to: '+15555550192',
        verification: { to: 'bob.logging@example.com', status: 'pending' },
        mobile: '9876543210',
        code: '482915',
        otp: '482915',
        details: { code: '482915', secret: 'JBSWY3DPEHPK3PXP', apiKey: 'otpd_abc', Signature: 'c2lnbmF0dXJl' },
        err: { code: 'ECONNREFUSED', message: 'connect failed' },
      },
      'probe',
    );
    server.server.logger.error({ code: 'STORE_UNAVAILABLE' }, 'probe error');
    const [probe, probeError] = capture.lines();
    assert.equal(probe!.to, '+1******0192');
    assert.deepEqual(probe!.verification, { to: 'b***@example.com', status: 'pending' });
    assert.equal(probe!.mobile, '***');
    assert.equal(probe!.code, '***');
    assert.equal(probe!.otp, '***');
    assert.deepEqual(probe!.details, { code: '***', secret: '***', apiKey: '***', Signature: '***' });
    assert.equal(probe!.err.code, 'ECONNREFUSED', 'error names are not secrets and stay readable');
    assert.equal(probeError!.code, 'STORE_UNAVAILABLE');
    for (const secret of ['482915', 'JBSWY3DPEHPK3PXP', 'otpd_abc', '15555550192', 'bob.logging', '9876543210']) assert.ok(!capture.searchable().includes(secret), secret);
  });

  it('safeUrl keeps malformed query strings intact instead of throwing', () => {
    assert.equal(safeUrl('/x?%E0%A4%A=1&code=12'), '/x?%E0%A4%A=1&code=***');
    assert.equal(safeUrl('/x?to=%E0%A4%A'), '/x?to=***');
  });
});
