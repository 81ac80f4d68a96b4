import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { codeFromMac, formatWallClock, parseStartTime, timeWindowMessage, windowState } from '../../src/core/time-window.js';

describe('core/time-window', () => {
  describe('parseStartTime (DR-0003/DR-0004: YYYY-mm-dd HH:mm:ss only)', () => {
    it('reads the seed sample in UTC and in the app time zone', () => {
      assert.deepEqual(parseStartTime('2022-12-12 19:04:30', 'UTC'), { ok: true, startMs: Date.UTC(2022, 11, 12, 19, 4, 30) });
      // India is UTC+05:30 all year.
      assert.deepEqual(parseStartTime('2022-12-12 19:04:30', 'Asia/Kolkata'), { ok: true, startMs: Date.UTC(2022, 11, 12, 13, 34, 30) });
    });

    it('refuses every other pattern', () => {
      for (const text of ['2022-12-12T19:04:30', '2022-12-12 19:04', '12-12-2022 19:04:30', '2022-12-12 19:04:30Z', ' 2022-12-12 19:04:30', '2022/12/12 19:04:30', '2022-12-12 7:04:30', '']) {
        assert.deepEqual(parseStartTime(text, 'UTC'), { ok: false, reason: 'format' }, text);
      }
    });

    it('refuses dates and times that do not exist on the calendar', () => {
      for (const text of ['2023-02-29 10:00:00', '2022-13-01 10:00:00', '2022-12-32 10:00:00', '2022-12-12 24:00:00', '2022-12-12 19:60:00', '2022-12-12 19:04:60', '2022-00-10 10:00:00']) {
        assert.deepEqual(parseStartTime(text, 'UTC'), { ok: false, reason: 'calendar' }, text);
      }
      assert.equal(parseStartTime('2024-02-29 10:00:00', 'UTC').ok, true);
    });

    it('refuses a wall-clock time skipped by daylight saving and takes the first of a repeated one', () => {
      assert.deepEqual(parseStartTime('2024-03-10 02:30:00', 'America/New_York'), { ok: false, reason: 'nonexistent' });
      // 01:30 happens twice on 2024-11-03 in New York: first at EDT (UTC-4).
      assert.deepEqual(parseStartTime('2024-11-03 01:30:00', 'America/New_York'), { ok: true, startMs: Date.UTC(2024, 10, 3, 5, 30, 0) });
      assert.deepEqual(parseStartTime('2024-07-01 12:00:00', 'America/New_York'), { ok: true, startMs: Date.UTC(2024, 6, 1, 16, 0, 0) });
    });

    it('formats back what it parses', () => {
      const parsed = parseStartTime('2022-12-12 19:04:30', 'Asia/Kolkata');
      assert.ok(parsed.ok);
      assert.equal(formatWallClock(parsed.startMs, 'Asia/Kolkata'), '2022-12-12 19:04:30');
    });
  });

  describe('windowState: valid while now ∈ [startTime, startTime + duration]', () => {
    const window = { startMs: 1_000_000, duration: 180 };
    it('is open at both ends and closed outside', () => {
      assert.equal(windowState(window, 999_999), 'not_started');
      assert.equal(windowState(window, 1_000_000), 'open');
      assert.equal(windowState(window, 1_180_000), 'open');
      assert.equal(windowState(window, 1_180_001), 'ended');
    });
  });

  describe('codeFromMac', () => {
    it('reduces the whole 256-bit MAC modulo 10^digit (checked against an independent computation)', () => {
      const mac = createHmac('sha256', Buffer.alloc(32, 'k')).update('msg').digest();
      // Python: int.from_bytes(hmac.new(b'k'*32, b'msg', sha256).digest(), 'big') % 10**n
      assert.equal(codeFromMac(mac, 6), '580605');
      assert.equal(codeFromMac(mac, 10), '6872580605');
    });

    it('keeps leading zeros and refuses digit counts outside 4..10', () => {
      assert.equal(codeFromMac(Buffer.alloc(32, 0), 6), '000000');
      assert.throws(() => codeFromMac(Buffer.alloc(32, 1), 3), RangeError);
      assert.throws(() => codeFromMac(Buffer.alloc(32, 1), 11), RangeError);
    });

    it('gives uniformly distributed digits (chi-square, significance 1e-6)', () => {
      // 4-digit codes, first digit (the one a modulo bias would skew most): 10 buckets, 9 degrees of freedom.
      const samples = 50_000;
      const counts = new Array<number>(10).fill(0);
      for (let i = 0; i < samples; i++) counts[Number(codeFromMac(randomBytes(32), 4)[0])]! += 1;
      const expected = samples / 10;
      const chiSquare = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
      // Critical value of chi-square with 9 degrees of freedom at p = 1e-6.
      assert.ok(chiSquare < 44.9, `chi-square ${chiSquare.toFixed(1)} for ${counts.join(',')}`);
    });
  });

  describe('timeWindowMessage', () => {
    it('differs for every field, so a code is bound to app, mobile, channel, start, duration and digit', () => {
      const base = { appId: 'app_1', mobile: '8777496061', channel: 'Digital', startMs: 1_670_871_870_000, duration: 180, digit: 6 };
      const variants = [base, { ...base, appId: 'app_2' }, { ...base, mobile: '8777496062' }, { ...base, channel: 'App' }, { ...base, startMs: base.startMs + 1000 }, { ...base, duration: 181 }, { ...base, digit: 7 }];
      assert.equal(new Set(variants.map(timeWindowMessage)).size, variants.length);
    });
  });
});
