import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { newId, newVerificationId, routingTag, routingTagOfVerificationId, timeOfId } from '../../src/core/ids.js';

const CROCKFORD = /^[0-9a-hjkmnp-tv-z]+$/;

test('an id is its prefix, 10 characters of its time and 16 random ones, and gives its time back', () => {
  for (const at of [0, 1, 31, 32, 1_765_000_000_123, Date.now(), 32 ** 10 - 1]) {
    const id = newId('au', at);
    assert.match(id, /^au_[0-9a-hjkmnp-tv-z]{26}$/, id);
    assert.equal(timeOfId(id), at);
  }
  assert.equal(newId('au', 0).slice(3, 13), '0000000000');
  assert.equal(newId('msg', 32 ** 10 - 1).slice(4, 14), 'zzzzzzzzzz');
});

test('ids sort as their times do, and ids of one millisecond differ', () => {
  const times = Array.from({ length: 500 }, (_, i) => 1_765_000_000_000 + i * 997);
  const ids = times.map((at) => newId('ev', at)).reverse();
  assert.deepEqual(ids.sort().map(timeOfId), times);
  const same = new Set(Array.from({ length: 10_000 }, () => newId('ev', 1_765_000_000_000)));
  assert.equal(same.size, 10_000);
});

test('every random position takes every character of the alphabet', () => {
  // 20,000 ids: a character is missing from one position with probability 32 × (31/32)^20000 ≈ 1e-274.
  const seen = Array.from({ length: 16 }, () => new Set<string>());
  for (let n = 0; n < 20_000; n++) {
    const random = newId('au').slice(13);
    for (let i = 0; i < 16; i++) seen[i]!.add(random[i]!);
  }
  for (const position of seen) assert.equal(position.size, 32);
});

test('a verification id carries its routing tag, found again from the id', () => {
  const tag = routingTag(randomBytes(32), 'app_1', '+15550001111');
  assert.match(tag, /^[0-9a-hjkmnp-tv-z]{4}$/);
  const id = newVerificationId(tag, 1_765_000_000_123);
  assert.match(id, /^ve_[0-9a-hjkmnp-tv-z]{26}$/);
  assert.ok(CROCKFORD.test(id.slice(3)));
  assert.equal(routingTagOfVerificationId(id), tag);
  assert.equal(timeOfId(id), 1_765_000_000_123);
  assert.throws(() => newVerificationId('abc'), /routing tag must be 4 characters/);
});

test('consecutive ids do not share characters by reusing one buffer', () => {
  const first = newId('au', 1);
  const second = newId('verylongprefix', 32 ** 10 - 1);
  assert.match(first, /^au_0000000001[0-9a-hjkmnp-tv-z]{16}$/);
  assert.match(second, /^verylongprefix_zzzzzzzzzz[0-9a-hjkmnp-tv-z]{16}$/);
  // A short id right after a long one ends where it should, with nothing of the longer one behind it.
  assert.match(newId('au', 1), /^au_0000000001[0-9a-hjkmnp-tv-z]{16}$/);
  assert.match(newVerificationId('abcd', 1), /^ve_0000000001abcd[0-9a-hjkmnp-tv-z]{12}$/);
});

test('a prefix that is not a few lowercase letters or digits is refused, not cut short', () => {
  assert.throws(() => newId('a'.repeat(16)), /id prefix "a{16}" must be 1-15 lowercase letters or digits/);
  assert.throws(() => newId('Ü'), /id prefix/);
  assert.throws(() => newId(''), /id prefix/);
});
