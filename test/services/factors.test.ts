import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Keyring } from '../../src/core/keyring.js';
import { isOtpdError } from '../../src/errors.js';
import { AppsService } from '../../src/services/apps.js';
import { FactorsService, type FactorRecord } from '../../src/services/factors.js';
import { openRedisStore } from '../../src/store/redis/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { AppRecord, Store } from '../../src/store/store.js';
import { decodeQrPng } from '../support/qr.js';
import { referenceBase32Decode, referenceHotp, referenceTotp } from '../support/otp-reference.js';
import { deleteKeysWithPrefix, inspectionClient, keysWithPrefix, uniquePrefix } from '../support/redis-keys.js';
import { TEST_ROUTING_KEY } from '../store/contract.js';
import { NO_REQUEST } from '../../src/core/rate-limits.js';

/**
 * The factors service over real stores (SQLite file, and the shared Redis CI runs) with an injected
 * clock, so time-window rules (V1) and lock delays (T1) are tested to the second.
 */
const SECRET = 'factor-test-secret-0123456789-abcdefghijklmnop';
const OTHER_SECRET = 'another-server-secret-9876543210-zyxwvutsrqpo';
const REDIS_URL = 'redis://127.0.0.1:6379';
const T0 = 1_800_000_000_000 + 15_000; // mid-step, so ±1 step never crosses by accident
const silent = pino({ level: 'silent' });

interface Backend {
  name: 'sqlite' | 'redis';
  open(): Promise<Store>;
  /** Every byte the backend holds, as one string (the SQLite file and its WAL, or every Redis value). */
  rawBytes(store: Store): Promise<string>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-factors-'));
  const path = join(dir, 'otpd.db');
  return {
    name: 'sqlite',
    open: () => openSqliteStore({ path }),
    async rawBytes() {
      // A read after the writes' commit: every row is in the file or its write-ahead log.
      return [path, `${path}-wal`].filter(existsSync).map((file) => readFileSync(file).toString('latin1')).join('\n');
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function redisBackend(): Backend {
  const prefix = uniquePrefix('factors');
  return {
    name: 'redis',
    open: () => openRedisStore({ urls: [REDIS_URL], cluster: false, prefix, routingKey: TEST_ROUTING_KEY }),
    async rawBytes() {
      const client = inspectionClient(REDIS_URL);
      try {
        const keys = await keysWithPrefix(client, prefix);
        const dumps = await Promise.all(keys.map((key) => client.dumpBuffer(key)));
        return keys.join('\n') + dumps.map((d) => (d ? d.toString('latin1') : '')).join('\n');
      } finally {
        client.disconnect();
      }
    },
    async cleanup() {
      const client = inspectionClient(REDIS_URL);
      try {
        await deleteKeysWithPrefix(client, prefix);
      } finally {
        client.disconnect();
      }
    },
  };
}

for (const makeBackend of [sqliteBackend, redisBackend]) {
  const backend = makeBackend();
  describe(`factors service (${backend.name})`, () => {
    let store: Store;
    let apps: AppsService;
    let factors: FactorsService;
    let app: AppRecord;
    const clock = { now: T0 };
    const tick = () => clock.now;

    before(async () => {
      store = await backend.open();
      const keyring = new Keyring(SECRET);
      apps = new AppsService(store, keyring, tick);
      factors = new FactorsService(store, keyring, tick, silent);
      app = (await apps.create(`factors-${randomBytes(4).toString('hex')}`, {})).app;
    });
    after(async () => {
      await store.close();
      await backend.cleanup();
    });

    async function enrolTotp(extra: Record<string, unknown> = {}) {
      return factors.enrol(app, { type: 'totp', account: 'alice@example.com', ...extra });
    }
    const code = (secret: string, stepOffset = 0) => referenceTotp(secret, clock.now, { stepOffset });

    it('A4: enrolment returns the secret and an otpauth URI; its QR code decodes to that URI', async () => {
      clock.now = T0;
      const { factor, secret, uri } = await enrolTotp({ issuer: 'ACME Co' });
      assert.equal(factor.status, 'unverified');
      assert.match(secret, /^[A-Z2-7]{32}$/);
      assert.equal(decodeQrPng(await factors.qrPng(uri)), uri);
      assert.match(await factors.qrSvg(uri), /^<svg[\s\S]*<\/svg>\s*$/);
      const url = new URL(uri);
      assert.equal(url.searchParams.get('secret'), secret);
      assert.equal(url.searchParams.get('issuer'), 'ACME Co');
      assert.equal(decodeURIComponent(url.pathname.slice(1)), 'ACME Co:alice@example.com');
      // The default issuer is the app's name (decisions 18).
      assert.equal((await enrolTotp()).factor.issuer, app.name);
    });

    it('V2: a code from an independent implementation verifies once; the same code again is rejected', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const first = await factors.verify(app, factor.id, code(secret), NO_REQUEST);
      assert.deepEqual([first.valid, first.reason, first.factor.status], [true, undefined, 'verified']);
      const again = await factors.verify(app, factor.id, code(secret), NO_REQUEST);
      assert.deepEqual([again.valid, again.reason], [false, 'code_reused']);
      // An older code still inside the window is refused too.
      const older = await factors.verify(app, factor.id, code(secret, -1), NO_REQUEST);
      assert.deepEqual([older.valid, older.reason], [false, 'code_reused']);
      // A replay is not a guess: it does not count towards the lock.
      assert.equal((await factors.get(app, factor.id)).failures, 0);
      // The next time step is accepted.
      clock.now = T0 + 30_000;
      assert.equal((await factors.verify(app, factor.id, code(secret), NO_REQUEST)).valid, true);
    });

    it('V1: injected clock: T-1 accepted, T-2 rejected, T+1 accepted, T+2 rejected', async () => {
      clock.now = T0;
      for (const [offset, valid] of [[-1, true], [-2, false], [1, true], [2, false], [0, true]] as const) {
        const { factor, secret } = await enrolTotp();
        const result = await factors.verify(app, factor.id, code(secret, offset), NO_REQUEST);
        assert.equal(result.valid, valid, `step offset ${offset}`);
        if (!valid) assert.equal(result.reason, 'invalid_code');
      }
    });

    it('V1: the window follows the app setting totpWindow', async () => {
      clock.now = T0;
      const strict = (await apps.create(`strict-${randomBytes(4).toString('hex')}`, { totpWindow: 0 })).app;
      const a = await factors.enrol(strict, { type: 'totp', account: 'a' });
      assert.equal((await factors.verify(strict, a.factor.id, code(a.secret, -1), NO_REQUEST)).valid, false);
      assert.equal((await factors.verify(strict, a.factor.id, code(a.secret), NO_REQUEST)).valid, true);
      const wide = (await apps.create(`wide-${randomBytes(4).toString('hex')}`, { totpWindow: 2 })).app;
      const b = await factors.enrol(wide, { type: 'totp', account: 'b' });
      assert.equal((await factors.verify(wide, b.factor.id, code(b.secret, -2), NO_REQUEST)).valid, true);
    });

    it('A1: SHA256/SHA512, 8 digits, 60 s factors verify against the independent implementation', async () => {
      clock.now = T0;
      for (const algorithm of ['SHA256', 'SHA512'] as const) {
        const { factor, secret, uri } = await enrolTotp({ algorithm, digits: 8, period: 60 });
        assert.equal(referenceBase32Decode(secret).length, algorithm === 'SHA256' ? 32 : 64);
        assert.equal(decodeQrPng(await factors.qrPng(uri)), uri);
        assert.equal(new URL(uri).searchParams.get('algorithm'), algorithm);
        const result = await factors.verify(app, factor.id, referenceTotp(secret, clock.now, { algorithm, digits: 8, period: 60 }), NO_REQUEST);
        assert.equal(result.valid, true, algorithm);
      }
    });

    it('V3: HOTP accepts HOTP(C+9), rejects HOTP(C+10), and moves the counter to i+1', async () => {
      const { factor, secret, uri } = await factors.enrol(app, { type: 'hotp', account: 'h' });
      assert.equal(new URL(uri).searchParams.get('counter'), '0');
      const key = referenceBase32Decode(secret);
      assert.deepEqual(await factors.verify(app, factor.id, referenceHotp(key, 10), NO_REQUEST).then((r) => [r.valid, r.reason]), [false, 'invalid_code']);
      const accepted = await factors.verify(app, factor.id, referenceHotp(key, 9), NO_REQUEST);
      assert.equal(accepted.valid, true);
      assert.equal(accepted.factor.counter, 10);
      // C is now 10: HOTP(10) is inside the look-ahead, HOTP(9) is used.
      assert.deepEqual(await factors.verify(app, factor.id, referenceHotp(key, 9), NO_REQUEST).then((r) => [r.valid, r.reason]), [false, 'code_reused']);
      assert.equal((await factors.verify(app, factor.id, referenceHotp(key, 10), NO_REQUEST)).valid, true);
      assert.equal((await factors.get(app, factor.id)).counter, 11);
    });

    it('A3: 1,000 enrolments: every decoded secret has >= 20 bytes and all are distinct', async () => {
      const secrets = new Set<string>();
      for (let batch = 0; batch < 20; batch++) {
        const enrolled = await Promise.all(Array.from({ length: 50 }, (_, i) => factors.enrol(app, { type: i % 2 ? 'hotp' : 'totp', account: `user${batch * 50 + i}` })));
        for (const { secret } of enrolled) {
          assert.ok(referenceBase32Decode(secret).length >= 20);
          secrets.add(secret);
        }
      }
      assert.equal(secrets.size, 1000);
    });

    it('T1: five wrong codes start a growing delay; while locked even the right code is refused', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const wrong = String((Number(code(secret)) + 500_000) % 1_000_000).padStart(6, '0');
      for (let i = 1; i <= 4; i++) assert.equal((await factors.verify(app, factor.id, wrong, NO_REQUEST)).valid, false);
      assert.equal((await factors.get(app, factor.id)).lockedUntil, null);
      const fifth = await factors.verify(app, factor.id, wrong, NO_REQUEST);
      assert.deepEqual([fifth.valid, fifth.factor.failures, fifth.factor.lockedUntil], [false, 5, T0 + 1000]);
      await assert.rejects(factors.verify(app, factor.id, code(secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'FACTOR_LOCKED') && error.retryAfter === 1 && error.status === 429);
      // Codes refused while locked are not counted.
      assert.equal((await factors.get(app, factor.id)).failures, 5);
      clock.now = T0 + 1000;
      const sixth = await factors.verify(app, factor.id, wrong, NO_REQUEST);
      assert.deepEqual([sixth.factor.failures, sixth.factor.lockedUntil], [6, T0 + 1000 + 2000]);
      clock.now = T0 + 2999;
      await assert.rejects(factors.verify(app, factor.id, code(secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'FACTOR_LOCKED'));
      clock.now = T0 + 3000;
      const right = await factors.verify(app, factor.id, code(secret), NO_REQUEST);
      assert.deepEqual([right.valid, right.factor.failures, right.factor.lockedUntil], [true, 0, null]);
    });

    it('T1: the delay is capped at 15 minutes, never a permanent lock', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const wrong = String((Number(code(secret)) + 1) % 1_000_000).padStart(6, '0');
      let last: FactorRecord | undefined;
      for (let i = 0; i < 20; i++) {
        last = (await factors.verify(app, factor.id, wrong, NO_REQUEST)).factor;
        clock.now = last.lockedUntil ?? clock.now;
      }
      assert.equal(last!.failures, 20);
      assert.equal(last!.lockedUntil! - last!.updatedAt, 900_000);
      clock.now = last!.lockedUntil!;
      assert.equal((await factors.verify(app, factor.id, code(secret), NO_REQUEST)).valid, true);
    });

    it('T2: 20 concurrent right codes give exactly one success', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const results = await Promise.all(Array.from({ length: 20 }, () => factors.verify(app, factor.id, code(secret), NO_REQUEST)));
      assert.equal(results.filter((r) => r.valid).length, 1);
      assert.ok(results.filter((r) => !r.valid).every((r) => r.reason === 'code_reused'));
    });

    it('T2: 20 concurrent wrong codes are all counted atomically: exactly 5 answered, the rest locked', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const wrong = String((Number(code(secret)) + 7) % 1_000_000).padStart(6, '0');
      const settled = await Promise.allSettled(Array.from({ length: 20 }, () => factors.verify(app, factor.id, wrong, NO_REQUEST)));
      const answered = settled.filter((s) => s.status === 'fulfilled');
      const locked = settled.filter((s) => s.status === 'rejected' && isOtpdError(s.reason, 'FACTOR_LOCKED'));
      assert.equal(answered.length, 5);
      assert.equal(locked.length, 15);
      assert.equal((await factors.get(app, factor.id)).failures, 5);
    });

    it('S1: the Base32 secret is not in the stored bytes; another server secret fails closed with SECRET_MISMATCH', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      const hex = referenceBase32Decode(secret).toString('hex');
      const raw = await backend.rawBytes(store);
      assert.ok(raw.includes(factor.id), 'the dump holds the factor');
      assert.ok(!raw.includes(secret), 'Base32 secret found in storage');
      assert.ok(!raw.toLowerCase().includes(hex), 'hex secret found in storage');
      assert.ok(!raw.includes(referenceBase32Decode(secret).toString('latin1')), 'raw secret bytes found in storage');
      const stored = await factors.get(app, factor.id);
      assert.equal(stored.secretKid, new Keyring(SECRET).currentKid);
      assert.equal(stored.secret.split('.')[0], stored.secretKid);

      const wrongKeys = new FactorsService(store, new Keyring(OTHER_SECRET), tick, silent);
      await assert.rejects(wrongKeys.verify(app, factor.id, code(secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'SECRET_MISMATCH') && /OTPD_SECRET/.test(error.message));
      // Nothing was counted or changed by the refused attempt.
      assert.equal((await factors.get(app, factor.id)).failures, 0);
      // During a rotation the previous secret still opens it.
      const rotated = new FactorsService(store, new Keyring(OTHER_SECRET, SECRET), tick, silent);
      assert.equal((await rotated.verify(app, factor.id, code(secret), NO_REQUEST)).valid, true);
    });

    it('recovery codes: only for a verified factor; ten, each accepted exactly once; stored hashed; a new set replaces the old', async () => {
      clock.now = T0;
      const { factor, secret } = await enrolTotp();
      await assert.rejects(factors.issueRecoveryCodes(app, factor.id), (error: unknown) => isOtpdError(error, 'FACTOR_NOT_VERIFIED'));
      assert.equal((await factors.verify(app, factor.id, code(secret), NO_REQUEST)).valid, true);
      const { codes } = await factors.issueRecoveryCodes(app, factor.id);
      assert.equal(codes.length, 10);
      const raw = await backend.rawBytes(store);
      for (const c of codes) {
        assert.ok(!raw.includes(c) && !raw.includes(c.replace(/-/g, '')), 'recovery code stored in the clear');
      }
      for (const [i, c] of codes.entries()) {
        const result = await factors.verify(app, factor.id, i % 2 ? c.toLowerCase() : c, NO_REQUEST);
        assert.deepEqual([result.valid, result.recoveryCodesRemaining], [true, 9 - i]);
        const again = await factors.verify(app, factor.id, c, NO_REQUEST);
        assert.deepEqual([again.valid, again.reason], [false, 'code_reused']);
      }
      const fresh = await factors.issueRecoveryCodes(app, factor.id);
      assert.equal((await factors.get(app, factor.id)).recoveryCodes!.codes.length, 10);
      // A code of the replaced set is now just a wrong code, and counts as one.
      const old = await factors.verify(app, factor.id, codes[0]!, NO_REQUEST);
      assert.deepEqual([old.valid, old.reason, old.factor.failures], [false, 'invalid_code', 1]);
      const guess = await factors.verify(app, factor.id, 'AAAA-BBBB-CCCC', NO_REQUEST);
      assert.deepEqual([guess.valid, guess.reason, guess.factor.failures], [false, 'invalid_code', 2]);
      const used = await factors.verify(app, factor.id, fresh.codes[3]!, NO_REQUEST);
      assert.deepEqual([used.valid, used.recoveryCodesRemaining, used.factor.failures], [true, 9, 0]);
    });

    it('a code that is neither the factor digits nor a recovery code is a validation error naming code', async () => {
      const { factor } = await enrolTotp();
      for (const bad of ['12345', '1234567', 'abc', '']) {
        await assert.rejects(factors.verify(app, factor.id, bad, NO_REQUEST), (error: unknown) => isOtpdError(error, 'VALIDATION') && error.errors?.[0]?.field === 'code');
      }
      assert.equal((await factors.get(app, factor.id)).failures, 0);
    });

    it("another app's factor answers like an unknown one; a deleted factor is gone", async () => {
      const { factor, secret } = await enrolTotp();
      const other = (await apps.create(`other-${randomBytes(4).toString('hex')}`, {})).app;
      await assert.rejects(factors.get(other, factor.id), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      await assert.rejects(factors.verify(other, factor.id, code(secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      await assert.rejects(factors.delete(other, factor.id), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      await factors.delete(app, factor.id);
      await assert.rejects(factors.get(app, factor.id), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      await assert.rejects(factors.verify(app, 'fa_unknown', code(secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
    });

    it('user keys (seed 004): one per (app, userId); a new key replaces the old; the key must match', async () => {
      clock.now = T0;
      const first = await factors.issueUserKey(app, 'user-1', 'svc');
      assert.equal(first.factor.issuer, 'svc');
      assert.equal(first.factor.account, 'user-1');
      assert.equal((await factors.issueUserKey(app, 'user-9')).factor.issuer, app.name);
      const right = await factors.verifyUserKey(app, 'user-1', first.secret, code(first.secret), NO_REQUEST);
      assert.equal(right.valid, true);
      await assert.rejects(factors.verifyUserKey(app, 'user-1', first.secret.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), code(first.secret, 1), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      await assert.rejects(factors.verifyUserKey(app, 'nobody', first.secret, code(first.secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      const second = await factors.issueUserKey(app, 'user-1', 'svc');
      assert.notEqual(second.secret, first.secret);
      await assert.rejects(factors.verifyUserKey(app, 'user-1', first.secret, code(first.secret, 1), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      // The replaced factor is deleted, not left behind.
      await assert.rejects(factors.get(app, first.factor.id), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
      assert.equal((await factors.verifyUserKey(app, 'user-1', second.secret, code(second.secret), NO_REQUEST)).valid, true);
      // A key deleted through the native API is simply gone for the dialect, without naming the factor.
      await factors.delete(app, second.factor.id);
      await assert.rejects(factors.verifyUserKey(app, 'user-1', second.secret, code(second.secret, 1), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND') && /^encodedKey:/.test(error.message));
      // The same userId in another app is another key.
      const other = (await apps.create(`other-${randomBytes(4).toString('hex')}`, {})).app;
      const third = await factors.issueUserKey(app, 'user-1');
      await assert.rejects(factors.verifyUserKey(other, 'user-1', third.secret, code(third.secret), NO_REQUEST), (error: unknown) => isOtpdError(error, 'NOT_FOUND'));
    });
  });
}
