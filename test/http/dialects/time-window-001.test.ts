import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestResponse, type TestServer } from '../../helper.js';
import { STORE_BACKENDS } from '../../support/backends.js';

/**
 * Seed 001 (GENERATE / VALIDATE a time-window OTP at POST /v1/otp) through a real server, on SQLite and
 * on Redis: both documented requests and responses, every DR rule failure with its own errorCode and the
 * seed's envelope, replay, expiry, the attempt limit, keyless access and the app settings.
 */

const SEED_GENERATE = { operationType: 'GENERATE', channel: 'Digital', startTime: '2022-12-12 19:04:30', duration: 180, digit: 6, mobile: '8777496061' };
const SEED_VALIDATE = { operationType: 'VALIDATE', generatedOtp: '145236', channel: 'Digital', startTime: '2022-12-12 19:04:30', duration: 180, digit: 6, mobile: '8777496061' };

/** `YYYY-mm-dd HH:mm:ss` of an instant, written independently of the server's parser: UTC plus a fixed offset. */
function wallClock(ms: number, offsetMinutes = 0): string {
  return new Date(Math.floor(ms / 1000) * 1000 + offsetMinutes * 60_000).toISOString().slice(0, 19).replace('T', ' ');
}

let mobileCounter = 0;
/** A fresh 10-digit mobile per test, so guard state of one test never meets another. */
function freshMobile(): string {
  mobileCounter += 1;
  return `9${String(process.pid % 10_000).padStart(4, '0')}${String(mobileCounter).padStart(5, '0')}`;
}

/** A GENERATE body for a window that opened a few seconds ago. */
function generateBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...SEED_GENERATE, startTime: wallClock(Date.now() - 5_000), mobile: freshMobile(), ...overrides };
}

function validateBody(generated: Record<string, unknown>, otp: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...generated, operationType: 'VALIDATE', generatedOtp: otp, ...overrides };
}

/** The seed's error envelope, with the key names decisions 15 fixes for the operation and status. */
function assertEnvelope(response: TestResponse, status: number, errorCode: number, operation: 'GENERATE' | 'VALIDATE' | undefined, details?: RegExp): void {
  assert.equal(response.status, status, response.text);
  const camel = operation === 'VALIDATE' && status !== 500;
  const [messageKey, detailsKey] = camel ? ['errorMessage', 'errorDetails'] : ['error-message', 'error-details'];
  assert.deepEqual(Object.keys(response.body).sort(), ['timestamp', 'status', 'errorCode', messageKey, 'traceID', detailsKey, 'path'].sort(), response.text);
  assert.equal(response.body.status, status);
  assert.equal(response.body.errorCode, errorCode, response.text);
  assert.equal(typeof response.body.timestamp, 'number');
  assert.ok(Math.abs(response.body.timestamp - Date.now()) < 60_000);
  assert.equal(response.body.traceID, response.headers.get('x-request-id'));
  assert.equal(response.body.path, '/v1/otp');
  if (status === 422) assert.equal(response.body[messageKey], 'UNPROCESSABLE_ENTITY');
  if (details) assert.match(response.body[detailsKey], details);
  assert.doesNotMatch(response.text, /\n\s+at |\.[jt]s:\d+|Error:/, 'no stack trace');
}

for (const backend of STORE_BACKENDS) {
  describe(`seed 001 time-window OTP (${backend.name})`, () => {
    let server: TestServer;
    const logLines: string[] = [];
    const post = (body: unknown, options: { apiKey?: string | null; headers?: Record<string, string> } = {}) => server.request('POST', '/v1/otp', body, { apiKey: null, ...options });

    before(async () => {
      const logStream = new Writable({
        write(chunk, _encoding, done) {
          logLines.push(String(chunk));
          done();
        },
      });
      server = await startTestServer({ ...backend.env(), OTPD_LOG_LEVEL: 'info' }, { logStream });
    });
    after(async () => server.close());

    describe('the documented requests and responses', () => {
      it('GENERATE answers 200 with the documented body and a code of `digit` digits', async () => {
        const response = await post(generateBody());
        assert.equal(response.status, 200, response.text);
        assert.deepEqual(Object.keys(response.body), ['status', 'message', 'otp']);
        assert.equal(response.body.status, 200);
        assert.equal(response.body.message, 'OTP is successfully generated');
        assert.match(response.body.otp, /^\d{6}$/);
      });

      it('VALIDATE of that code answers 200 with the documented body', async () => {
        const generated = generateBody();
        const otp = (await post(generated)).body.otp;
        const response = await post(validateBody(generated, otp));
        assert.equal(response.status, 200, response.text);
        assert.deepEqual(response.body, { status: 200, message: 'OTP is successfully verified' });
      });

      it('GENERATE twice for one window gives the same code (it is derived, not stored)', async () => {
        const generated = generateBody({ digit: 8 });
        const first = await post(generated);
        const second = await post(generated);
        assert.match(first.body.otp, /^\d{8}$/);
        assert.equal(second.body.otp, first.body.otp);
      });

      it('the seed samples, dated 2022, are well-formed but their window ended long ago (8003)', async () => {
        assertEnvelope(await post(SEED_GENERATE), 422, 8003, 'GENERATE', /^startTime: the OTP window ended at 2022-12-12 19:07:30 \(UTC\)/);
        assertEnvelope(await post(SEED_VALIDATE), 422, 8003, 'VALIDATE', /ended/);
      });

      it('accepts the field-table spellings operation_type, start_time and mobile_no', async () => {
        const generated = generateBody();
        const { operationType, startTime, mobile, ...rest } = generated;
        const response = await post({ ...rest, operation_type: operationType, start_time: startTime, mobile_no: mobile });
        assert.equal(response.status, 200, response.text);
        assert.equal(response.body.otp, (await post(generated)).body.otp);
        const validated = await post({ ...rest, operation_type: 'VALIDATE', start_time: startTime, mobile_no: mobile, generatedOtp: response.body.otp });
        assert.equal(validated.status, 200, validated.text);
      });

      it('accepts mobile and generatedOtp as JSON numbers, left-padded', async () => {
        const generated = generateBody({ digit: 10 });
        const otp: string = (await post(generated)).body.otp;
        const asNumber = await post(validateBody({ ...generated, mobile: Number(generated.mobile) }, Number(otp)));
        assert.equal(asNumber.status, 200, asNumber.text);
        // A mobile with a leading zero only survives as a string; as a number it is padded back to 10 digits.
        const zeroMobile = generateBody({ mobile: '0123456789' });
        const zeroCode = (await post(zeroMobile)).body.otp;
        assert.equal((await post({ ...zeroMobile, mobile: 123456789 })).body.otp, zeroCode);
      });
    });

    describe('DR rules, one errorCode each, in the seed envelope', () => {
      const generateCases: [string, Record<string, unknown>, number, RegExp][] = [
        ['operationType missing', { operationType: undefined }, 1001, /^DR-0001: operationType is required/],
        ['operationType wrong', { operationType: 'CREATE' }, 1002, /^DR-0001: operationType must be GENERATE or VALIDATE$/],
        ['operationType lower-case', { operationType: 'generate' }, 1002, /^DR-0001: /],
        ['both spellings disagree', { operation_type: 'VALIDATE' }, 1002, /^DR-0001: operationType and operation_type differ/],
        ['channel missing', { channel: undefined }, 2001, /^DR-0002: channel is required/],
        ['channel not allowed', { channel: 'Web' }, 2002, /^DR-0002: channel must be one of Digital, Partner, App, Brand$/],
        ['startTime missing', { startTime: undefined }, 3001, /^DR-0003: startTime is required/],
        ['startTime ISO 8601', { startTime: '2022-12-12T19:04:30Z' }, 3002, /^DR-0003: startTime must be in YYYY-mm-dd HH:mm:ss format/],
        ['startTime a number', { startTime: 1670871870 }, 3002, /^DR-0003: /],
        ['startTime not on the calendar', { startTime: '2023-02-30 10:00:00' }, 3003, /^DR-0003: startTime 2023-02-30 10:00:00 is not a valid date and time$/],
        ['startTime too far ahead', { startTime: wallClock(Date.now() + 10 * 60_000) }, 3005, /^DR-0003: startTime must not be more than 300 seconds in the future$/],
        ['duration missing', { duration: undefined }, 4001, /^DR-0004: duration is required/],
        ['duration a string', { duration: '180' }, 4002, /^DR-0004: duration must be an integer/],
        ['duration a fraction', { duration: 1.5 }, 4002, /^DR-0004: /],
        ['duration zero', { duration: 0 }, 4003, /^DR-0004: duration must be at least 1 second$/],
        ['duration over the app maximum', { duration: 3601 }, 4004, /^DR-0004: duration must be at most 3600 seconds/],
        ['digit missing', { digit: undefined }, 5001, /^DR-0005: digit is required/],
        ['digit a string', { digit: '6' }, 5002, /^DR-0005: digit must be an integer$/],
        ['digit too small', { digit: 3 }, 5003, /^DR-0005: digit must be from 4 to 10$/],
        ['digit too large', { digit: 11 }, 5003, /^DR-0005: /],
        ['mobile missing', { mobile: undefined }, 6001, /^DR-0006: mobile is required/],
        ['mobile of 9 digits', { mobile: '877749606' }, 6002, /^DR-0006: mobile must be a 10 digit number$/],
        ['mobile with a country code', { mobile: '+918777496061' }, 6002, /^DR-0006: /],
        ['mobile with letters', { mobile: '87774960ab' }, 6002, /^DR-0006: /],
        ['mobile a negative number', { mobile: -8777496061 }, 6002, /^DR-0006: /],
      ];
      for (const [name, change, errorCode, details] of generateCases) {
        it(`GENERATE: ${name} → 422 errorCode ${errorCode}`, async () => {
          const body = { ...generateBody(), ...change };
          for (const key of Object.keys(change)) if (change[key] === undefined) delete body[key];
          assertEnvelope(await post(body), 422, errorCode, change.operationType === undefined && 'operationType' in change ? undefined : 'GENERATE', details);
        });
      }

      const validateCases: [string, Record<string, unknown>, number, RegExp][] = [
        ['generatedOtp missing', { generatedOtp: undefined }, 7001, /^DR-0002: generatedOtp is required for VALIDATE$/],
        ['generatedOtp with letters', { generatedOtp: '14a236' }, 7002, /^DR-0002: generatedOtp must be a number/],
        ['generatedOtp of 5 digits', { generatedOtp: '14523' }, 7002, /^DR-0002: generatedOtp must be a number of 6 digits/],
        ['channel not allowed', { channel: 'digital' }, 2002, /^DR-0003: channel must be one of Digital, Partner, App, Brand$/],
        ['startTime with slashes', { startTime: '2022/12/12 19:04:30' }, 3002, /^DR-0004: /],
        ['duration a string', { duration: 'three minutes' }, 4002, /^DR-0005: /],
        ['digit a fraction', { digit: 6.5 }, 5002, /^DR-0006: /],
        ['mobile of 11 digits', { mobile: '87774960611' }, 6002, /^DR-0007: mobile must be a 10 digit number$/],
      ];
      for (const [name, change, errorCode, details] of validateCases) {
        it(`VALIDATE: ${name} → 422 errorCode ${errorCode} with errorMessage/errorDetails`, async () => {
          const body = validateBody(generateBody(), '145236', change);
          for (const key of Object.keys(change)) if (change[key] === undefined) delete body[key];
          assertEnvelope(await post(body), 422, errorCode, 'VALIDATE', details);
        });
      }

      it('a body that is not JSON, not an object or not JSON at all gets its own errorCode', async () => {
        assertEnvelope(await post('{"operationType": "GENERATE",'), 400, 2, undefined, /^body: is not valid JSON$/);
        assertEnvelope(await post([generateBody()]), 400, 3, undefined, /^body: must be a JSON object$/);
        assertEnvelope(await post('operationType=GENERATE', { headers: { 'content-type': 'text/plain' } }), 415, 4, undefined, /^Content-Type: must be application\/json$/);
      });
    });

    describe('the window and the guard state', () => {
      it('a validated code cannot be validated again (8004)', async () => {
        const generated = generateBody();
        const otp = (await post(generated)).body.otp;
        assert.equal((await post(validateBody(generated, otp))).status, 200);
        assertEnvelope(await post(validateBody(generated, otp)), 422, 8004, 'VALIDATE', /already verified/);
      });

      it('a code is bound to its channel, duration, digit and mobile (8001)', async () => {
        const generated = generateBody();
        const otp = (await post(generated)).body.otp;
        for (const change of [{ channel: 'App' }, { duration: 181 }, { mobile: freshMobile() }]) {
          assertEnvelope(await post(validateBody(generated, otp, change)), 422, 8001, 'VALIDATE', /^generatedOtp: the OTP is not valid/);
        }
        assertEnvelope(await post(validateBody(generated, `${otp}0`, { digit: 7 })), 422, 8001, 'VALIDATE');
        assert.equal((await post(validateBody(generated, otp))).status, 200);
      });

      it('a code stops working when its window ends (8003)', async () => {
        const start = Math.floor(Date.now() / 1000) * 1000 - 1000;
        const generated = generateBody({ startTime: wallClock(start), duration: 2 });
        const otp = (await post(generated)).body.otp;
        assert.match(otp, /^\d{6}$/);
        const end = start + 2000;
        // Bounded wait past the window's last millisecond.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, end - Date.now()) + 50));
        assertEnvelope(await post(validateBody(generated, otp)), 422, 8003, 'VALIDATE', /^startTime: the OTP window ended at /);
        assertEnvelope(await post(generated), 422, 8003, 'GENERATE');
      });

      it('a window that opens later can be generated but not validated yet (8002)', async () => {
        const generated = generateBody({ startTime: wallClock(Date.now() + 120_000) });
        const otp = (await post(generated)).body.otp;
        assertEnvelope(await post(validateBody(generated, otp)), 422, 8002, 'VALIDATE', /has not opened yet/);
      });

      it('after maxAttempts (5) guesses at a mobile and startTime, even the right code is refused (8005, 429)', async () => {
        const generated = generateBody();
        const otp: string = (await post(generated)).body.otp;
        const wrong = otp === '000000' ? '000001' : '000000';
        for (let i = 0; i < 5; i++) assertEnvelope(await post(validateBody(generated, wrong)), 422, 8001, 'VALIDATE');
        const locked = await post(validateBody(generated, otp));
        assertEnvelope(locked, 429, 8005, 'VALIDATE', /too many wrong OTPs/);
        assert.ok(Number(locked.headers.get('retry-after')) >= 1);
        // The limit is per (mobile, startTime): another channel of the same window is locked as well.
        assertEnvelope(await post(validateBody({ ...generated, channel: 'App' }, otp)), 429, 8005, 'VALIDATE');
      });

      it('concurrent guesses never get more than maxAttempts comparisons (standards T2)', async () => {
        const generated = generateBody();
        const otp: string = (await post(generated)).body.otp;
        const wrong = otp === '999999' ? '999998' : '999999';
        const answers = await Promise.all(Array.from({ length: 40 }, () => post(validateBody(generated, wrong))));
        const compared = answers.filter((answer) => answer.body.errorCode === 8001).length;
        const refused = answers.filter((answer) => answer.body.errorCode === 8005).length;
        assert.equal(compared + refused, 40);
        assert.equal(compared, 5);
      });
    });

    describe('apps, keys and settings', () => {
      it('an API key selects its app, whose codes differ; an unknown key is refused (6)', async () => {
        const other = await server.server.services.apps.create(`tw-${backend.name}-${process.pid}`, {});
        const generated = generateBody({ digit: 10 });
        const keyless = (await post(generated)).body.otp;
        const keyed = await post(generated, { apiKey: other.apiKey });
        assert.equal(keyed.status, 200, keyed.text);
        // Same window, another app: equal 10-digit codes would happen with probability 1e-10.
        assert.notEqual(keyed.body.otp, keyless);
        assertEnvelope(await post(validateBody(generated, keyless), { apiKey: other.apiKey }), 422, 8001, 'VALIDATE');
        assertEnvelope(await post(generated, { apiKey: 'otpd_not_a_real_key_0000000000' }), 401, 6, 'GENERATE', /^Authorization: /);
      });

      it('keylessAccess off: keyless requests are refused (7), keyed ones still work', async () => {
        await server.server.services.apps.update('default', { keylessAccess: false });
        try {
          assertEnvelope(await post(generateBody()), 401, 7, 'GENERATE', /keylessAccess/);
          assert.equal((await post(generateBody(), { apiKey: server.apiKey })).status, 200);
        } finally {
          await server.server.services.apps.update('default', { keylessAccess: true });
        }
      });

      it('echoCode off: GENERATE answers the documented body without `otp`', async () => {
        await server.server.services.apps.update('default', { echoCode: false });
        try {
          const response = await post(generateBody());
          assert.equal(response.status, 200);
          assert.deepEqual(response.body, { status: 200, message: 'OTP is successfully generated' });
        } finally {
          await server.server.services.apps.update('default', { echoCode: true });
        }
      });

      it('startTime is read in the app time zone', async () => {
        await server.server.services.apps.update('default', { timeZone: 'Asia/Kolkata' });
        try {
          // Kolkata is UTC+05:30: its wall clock now is an open window; the UTC wall clock read there ended 5.5 h ago.
          assert.equal((await post(generateBody({ startTime: wallClock(Date.now() - 5_000, 330) }))).status, 200);
          assertEnvelope(await post(generateBody({ startTime: wallClock(Date.now() - 5_000) })), 422, 8003, 'GENERATE', /\(Asia\/Kolkata\)/);
        } finally {
          await server.server.services.apps.update('default', { timeZone: 'UTC' });
        }
      });

      it('timeWindowMaxDuration bounds the window', async () => {
        await server.server.services.apps.update('default', { timeWindowMaxDuration: 60 });
        try {
          assertEnvelope(await post(generateBody({ duration: 61 })), 422, 4004, 'GENERATE', /^DR-0004: duration must be at most 60 seconds/);
          assert.equal((await post(generateBody({ duration: 60 }))).status, 200);
        } finally {
          await server.server.services.apps.update('default', { timeWindowMaxDuration: 3600 });
        }
      });

      it('timeWindowSms on: GENERATE also sends the code to defaultCountryCode + mobile, admitted like any first send', async () => {
        await server.server.services.apps.update('default', { timeWindowSms: true });
        try {
          const generated = generateBody();
          const response = await post(generated);
          assert.equal(response.status, 200, response.text);
          const to = `+91${generated.mobile as string}`;
          let sent: { code: string; channel: string } | undefined;
          for (let i = 0; i < 100 && !sent; i++) {
            sent = server.messages().find((message) => message.to === to);
            if (!sent) await new Promise((resolve) => setTimeout(resolve, 20));
          }
          assert.ok(sent, 'an SMS reached the outbox');
          assert.equal(sent.channel, 'sms');
          assert.equal(sent.code, response.body.otp);
          // The app's destinationCooldown (30 s by default) refuses a second SMS to the number at once.
          const again = await post(generated);
          assertEnvelope(again, 429, 9002, 'GENERATE', /^mobile: /);
          assert.ok(Number(again.headers.get('retry-after')) >= 1);
          assert.equal(again.body['error-details'].includes(sent.code), false);
          assert.equal(server.messages().filter((message) => message.to === to).length, 1);
          // A country outside the allow-list is refused before anything is sent.
          await server.server.services.apps.update('default', { allowedCountries: ['US'] });
          const abroad = generateBody();
          assertEnvelope(await post(abroad), 422, 9003, 'GENERATE', /^mobile: /);
          assert.equal(server.messages().some((message) => message.to === `+91${abroad.mobile as string}`), false);
        } finally {
          await server.server.services.apps.update('default', { timeWindowSms: false, allowedCountries: [] });
        }
      });
    });

    it('no code reaches the logs', async () => {
      const generated = generateBody({ digit: 10 });
      const otp: string = (await post(generated)).body.otp;
      assert.equal((await post(validateBody(generated, otp))).status, 200);
      const logs = logLines.join('');
      assert.ok(logs.includes('/v1/otp'), 'requests were logged');
      assert.ok(!logs.includes(otp), 'the code is absent from the logs');
    });
  });
}
