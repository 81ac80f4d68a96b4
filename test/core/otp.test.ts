import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { URI } from 'otpauth';
import { isOtpdError } from '../../src/errors.js';
import {
  base32Decode,
  base32Encode,
  checkLabelPart,
  checkOtp,
  generateSecret,
  hotp,
  keyUri,
  lockSeconds,
  otpParams,
  totp,
  totpStep,
  type OtpAlgorithm,
  type OtpParams,
} from '../../src/core/otp.js';
import { generateRecoveryCodes, normalizeRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/core/recovery-codes.js';
import { referenceBase32Decode, referenceHotp } from '../support/otp-reference.js';

const RFC4226_KEY = Buffer.from('12345678901234567890');
const RFC6238_KEYS: Record<OtpAlgorithm, Buffer> = {
  SHA1: Buffer.from('12345678901234567890'),
  SHA256: Buffer.from('12345678901234567890123456789012'),
  SHA512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
};

describe('A1: HOTP/TOTP values', () => {
  it('A1: RFC 4226 Appendix D, HOTP SHA1 6 digits, counters 0-9', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => assert.equal(hotp(RFC4226_KEY, counter, { algorithm: 'SHA1', digits: 6 }), code, `counter ${counter}`));
    assert.equal(base32Encode(RFC4226_KEY), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  });

  const table: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [seconds, sha1, sha256, sha512] of table) {
    it(`A1: RFC 6238 Appendix B at T = ${seconds} s, SHA1/SHA256/SHA512, 8 digits`, () => {
      const expected: Record<OtpAlgorithm, string> = { SHA1: sha1, SHA256: sha256, SHA512: sha512 };
      for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
        assert.equal(totp(RFC6238_KEYS[algorithm], seconds * 1000, { algorithm, digits: 8, period: 30 }), expected[algorithm], `${algorithm} at ${seconds}`);
      }
    });
  }

  it('A1: each algorithm needs its own seed length (the standards note)', () => {
    assert.equal(totp(RFC6238_KEYS.SHA1, 59_000, { algorithm: 'SHA256', digits: 8, period: 30 }), '32247374');
  });

  it('A1: time values past 2^32 s and counters past 2^32 agree with an independent implementation', () => {
    const times = [2 ** 32, 2 ** 32 + 29, 2 ** 32 + 30, 2 ** 33 + 12_345, 2 ** 40 + 7, 253_402_300_799 /* 9999-12-31 */];
    const counters = [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 3, 2 ** 48 + 5, Number.MAX_SAFE_INTEGER];
    for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
      const key = RFC6238_KEYS[algorithm];
      for (const digits of [6, 8]) {
        for (const seconds of times) {
          const step = Math.floor(seconds / 30);
          assert.ok(seconds >= 2 ** 32);
          assert.equal(totp(key, seconds * 1000, { algorithm, digits, period: 30 }), referenceHotp(key, BigInt(step), algorithm, digits), `${algorithm}/${digits} at ${seconds} s`);
        }
        for (const counter of counters) {
          assert.equal(hotp(key, counter, { algorithm, digits }), referenceHotp(key, BigInt(counter), algorithm, digits), `${algorithm}/${digits} counter ${counter}`);
        }
      }
    }
  });

  it('A1: the reference implementation itself reproduces the RFC 6238 table (so it is a real oracle)', () => {
    assert.equal(referenceHotp(RFC6238_KEYS.SHA512, BigInt(Math.floor(20000000000 / 30)), 'SHA512', 8), '47863826');
    assert.equal(referenceHotp(RFC4226_KEY, 9n, 'SHA1', 6), '520489');
    assert.deepEqual(referenceBase32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), RFC4226_KEY);
  });

  it('A1: refuses counters that cannot be encoded exactly', () => {
    assert.throws(() => hotp(RFC4226_KEY, -1, { algorithm: 'SHA1', digits: 6 }), RangeError);
    assert.throws(() => hotp(RFC4226_KEY, 2 ** 53, { algorithm: 'SHA1', digits: 6 }), RangeError);
    assert.throws(() => hotp(RFC4226_KEY, 1.5, { algorithm: 'SHA1', digits: 6 }), RangeError);
  });
});

describe('A2: factor parameters', () => {
  it('A2: rejects fewer than 6 digits, naming the field and the rule', () => {
    for (const digits of [0, 4, 5]) {
      assert.throws(
        () => otpParams({ type: 'totp', digits }),
        (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === 'digits' && /at least 6/.test(error.message),
      );
    }
    assert.throws(() => otpParams({ type: 'hotp', digits: 5 }), (error: unknown) => isOtpdError(error, 'VALIDATION'));
  });

  it('A2: accepts 6 and 8 digits, and only the documented algorithms and periods', () => {
    assert.deepEqual(otpParams({ type: 'totp' }), { type: 'totp', algorithm: 'SHA1', digits: 6, period: 30 });
    assert.deepEqual(otpParams({ type: 'totp', digits: 8, period: 60, algorithm: 'SHA512' }), { type: 'totp', algorithm: 'SHA512', digits: 8, period: 60 });
    assert.deepEqual(otpParams({ type: 'hotp', digits: 8 }), { type: 'hotp', algorithm: 'SHA1', digits: 8, period: null });
    const fieldOf = (input: Parameters<typeof otpParams>[0]) => {
      try {
        otpParams(input);
      } catch (error) {
        return isOtpdError(error) ? error.errors?.[0]?.field : undefined;
      }
      return undefined;
    };
    assert.equal(fieldOf({ type: 'totp', digits: 7 }), 'digits');
    assert.equal(fieldOf({ type: 'totp', digits: 10 }), 'digits');
    assert.equal(fieldOf({ type: 'totp', period: 45 }), 'period');
    assert.equal(fieldOf({ type: 'hotp', period: 30 }), 'period');
    assert.equal(fieldOf({ type: 'totp', algorithm: 'MD5' }), 'algorithm');
    assert.equal(fieldOf({ type: 'sms' }), 'type');
  });
});

describe('A3: secrets', () => {
  it('A3: at least 160 bits, as long as the hash output, and distinct', () => {
    assert.equal(generateSecret('SHA1').length, 20);
    assert.equal(generateSecret('SHA256').length, 32);
    assert.equal(generateSecret('SHA512').length, 64);
    const seen = new Set(Array.from({ length: 1000 }, () => generateSecret('SHA1').toString('hex')));
    assert.equal(seen.size, 1000);
  });

  it('Base32 without padding round-trips; the strict decoder refuses padding, lower case and spaces', () => {
    for (let length = 1; length <= 64; length++) {
      const bytes = generateSecret('SHA512').subarray(0, length);
      const text = base32Encode(bytes);
      assert.match(text, /^[A-Z2-7]+$/);
      assert.deepEqual(Buffer.from(base32Decode(text)!), Buffer.from(bytes));
    }
    assert.equal(base32Decode('GEZDGNBV===='), undefined);
    assert.equal(base32Decode('gezdgnbv'), undefined);
    assert.equal(base32Decode('GEZD GNBV'), undefined);
    assert.equal(base32Decode(''), undefined);
  });
});

describe('A4: otpauth:// Key Uri Format', () => {
  const secret = base32Encode(generateSecret('SHA256'));

  it('A4: TOTP label issuer:account percent-encoded, issuer param equal to the prefix, secret unpadded', () => {
    const params: OtpParams = { type: 'totp', algorithm: 'SHA256', digits: 8, period: 60 };
    const uri = keyUri({ params, secret, issuer: 'ACME Co', account: 'john.doe@example.com' });
    assert.equal(uri, `otpauth://totp/ACME%20Co:john.doe%40example.com?secret=${secret}&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60`);
    const url = new URL(uri);
    assert.equal(url.protocol, 'otpauth:');
    assert.equal(url.host, 'totp');
    const [prefix, account] = decodeURIComponent(url.pathname.slice(1)).split(':');
    assert.equal(prefix, 'ACME Co');
    assert.equal(account, 'john.doe@example.com');
    assert.equal(url.searchParams.get('issuer'), prefix);
    assert.equal(url.searchParams.get('secret'), secret);
    assert.doesNotMatch(url.searchParams.get('secret')!, /=/);
    // An independent parser reads the same factor back.
    const parsed = URI.parse(uri);
    assert.equal(parsed.issuer, 'ACME Co');
    assert.equal(parsed.label, 'john.doe@example.com');
    assert.equal(parsed.secret.base32, secret);
    assert.equal(parsed.algorithm, 'SHA256');
    assert.equal(parsed.digits, 8);
    assert.equal((parsed as { period?: number }).period, 60);
  });

  it('A4: HOTP carries the counter and no period', () => {
    const uri = keyUri({ params: { type: 'hotp', algorithm: 'SHA1', digits: 6, period: null }, secret, issuer: 'otpd', account: 'bob', counter: 0 });
    const url = new URL(uri);
    assert.equal(url.host, 'hotp');
    assert.equal(url.searchParams.get('counter'), '0');
    assert.equal(url.searchParams.get('period'), null);
    assert.equal((URI.parse(uri) as { counter?: number }).counter, 0);
  });

  it('A4: issuer and account may not contain a colon or control characters', () => {
    for (const bad of ['a:b', '', 'x\ny', 'x'.repeat(257)]) {
      assert.throws(() => checkLabelPart('account', bad), (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === 'account');
    }
    assert.equal(checkLabelPart('issuer', 'ACME Co. (EU) ü'), 'ACME Co. (EU) ü');
  });
});

describe('V1-V3: accepting codes', () => {
  const key = RFC6238_KEYS.SHA1;
  const params: OtpParams = { type: 'totp', algorithm: 'SHA1', digits: 6, period: 30 };
  const policy = { totpWindow: 1, hotpLookAhead: 10 };
  const now = 1_700_000_015_000;
  const step = totpStep(now, 30);
  const codeAt = (s: number) => hotp(key, s, params);
  const fresh = { lastUsedStep: null, counter: 0 };

  it('V1: one step of drift each way by default: T-1 and T+1 accepted, T-2 and T+2 rejected', () => {
    assert.deepEqual(checkOtp(key, codeAt(step), params, fresh, policy, now), { outcome: 'accepted', state: { lastUsedStep: step, counter: 0 } });
    assert.equal(checkOtp(key, codeAt(step - 1), params, fresh, policy, now).outcome, 'accepted');
    assert.equal(checkOtp(key, codeAt(step + 1), params, fresh, policy, now).outcome, 'accepted');
    assert.equal(checkOtp(key, codeAt(step - 2), params, fresh, policy, now).outcome, 'wrong');
    assert.equal(checkOtp(key, codeAt(step + 2), params, fresh, policy, now).outcome, 'wrong');
  });

  it('V1: the window is configurable (0 and 2)', () => {
    assert.equal(checkOtp(key, codeAt(step - 1), params, fresh, { ...policy, totpWindow: 0 }, now).outcome, 'wrong');
    assert.equal(checkOtp(key, codeAt(step), params, fresh, { ...policy, totpWindow: 0 }, now).outcome, 'accepted');
    assert.equal(checkOtp(key, codeAt(step - 2), params, fresh, { ...policy, totpWindow: 2 }, now).outcome, 'accepted');
  });

  it('V2: a step at or before the last accepted one is never accepted again', () => {
    const used = { lastUsedStep: step, counter: 0 };
    assert.deepEqual(checkOtp(key, codeAt(step), params, used, policy, now), { outcome: 'reused' });
    assert.deepEqual(checkOtp(key, codeAt(step - 1), params, used, policy, now), { outcome: 'reused' });
    assert.deepEqual(checkOtp(key, codeAt(step + 1), params, used, policy, now), { outcome: 'accepted', state: { lastUsedStep: step + 1, counter: 0 } });
    // Accepting T+1 moves the mark past T, so the current code is then refused too.
    assert.deepEqual(checkOtp(key, codeAt(step), params, { lastUsedStep: step + 1, counter: 0 }, policy, now), { outcome: 'reused' });
  });

  it('V3: HOTP accepts C+9 and moves C past it, rejects C+10 and anything at or before C-1', () => {
    const h: OtpParams = { type: 'hotp', algorithm: 'SHA1', digits: 6, period: null };
    const at = (c: number) => hotp(key, c, h);
    const state = { lastUsedStep: null, counter: 100 };
    assert.deepEqual(checkOtp(key, at(109), h, state, policy, now), { outcome: 'accepted', state: { lastUsedStep: null, counter: 110 } });
    assert.equal(checkOtp(key, at(110), h, state, policy, now).outcome, 'wrong');
    assert.deepEqual(checkOtp(key, at(100), h, state, policy, now), { outcome: 'accepted', state: { lastUsedStep: null, counter: 101 } });
    assert.equal(checkOtp(key, at(99), h, state, policy, now).outcome, 'reused');
    assert.equal(checkOtp(key, at(105), h, { lastUsedStep: null, counter: 110 }, policy, now).outcome, 'reused');
    assert.equal(checkOtp(key, at(3), h, { lastUsedStep: null, counter: 0 }, { ...policy, hotpLookAhead: 3 }, now).outcome, 'wrong');
  });
});

describe('T1: growing delay after failed codes', () => {
  it('T1: none for the first four failures, then 1 s doubling, capped at 15 minutes', () => {
    assert.deepEqual([0, 1, 2, 3, 4].map(lockSeconds), [0, 0, 0, 0, 0]);
    assert.deepEqual([5, 6, 7, 8, 14].map(lockSeconds), [1, 2, 4, 8, 512]);
    assert.equal(lockSeconds(15), 900);
    assert.equal(lockSeconds(1_000_000), 900);
  });
});

describe('recovery codes', () => {
  it('issues ten distinct XXXX-XXXX-XXXX codes of Crockford Base32', () => {
    const codes = generateRecoveryCodes();
    assert.equal(codes.length, RECOVERY_CODE_COUNT);
    assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
    for (const code of codes) assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
  });

  it('reads what a person types: case, hyphens, spaces, O for 0 and I/L for 1', () => {
    assert.equal(normalizeRecoveryCode('ab12-cd34-ef56'), 'AB12CD34EF56');
    assert.equal(normalizeRecoveryCode(' AB12 CD34 EF56 '), 'AB12CD34EF56');
    assert.equal(normalizeRecoveryCode('oil0-0000-0000'), '011000000000');
    assert.equal(normalizeRecoveryCode('AB12-CD34-EF5'), undefined);
    assert.equal(normalizeRecoveryCode('AB12-CD34-EF5U'), undefined);
    assert.equal(normalizeRecoveryCode('123456'), undefined);
  });
});
