import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultSettings, settingsFromStored } from '../../src/core/settings.js';

describe('settings read back from the store', () => {
  it('keeps every stored value, development defaults included', () => {
    const stored = { ...defaultSettings(false), codeLength: 8 };
    const read = settingsFromStored(JSON.parse(JSON.stringify(stored)) as Record<string, unknown>);
    assert.deepEqual(read, stored);
    assert.equal(read.echoCode, true);
    assert.equal(read.conversionGuard, null);
  });

  it('fills a setting a later release added with its production default, the stricter one', () => {
    const stored: Record<string, unknown> = { ...defaultSettings(false) };
    for (const added of ['echoCode', 'keylessAccess', 'signatureHelper', 'conversionGuard', 'auditRetentionDays']) delete stored[added];
    const read = settingsFromStored(stored);
    assert.equal(read.echoCode, false);
    assert.equal(read.keylessAccess, false);
    assert.equal(read.signatureHelper, false);
    assert.deepEqual(read.conversionGuard, defaultSettings(true).conversionGuard);
    assert.notEqual(read.conversionGuard, null);
    // A setting without a production default gets its one default.
    assert.equal(read.auditRetentionDays, 365);
  });

  it('gives each app its own copy of object defaults', () => {
    const first = settingsFromStored({});
    const second = settingsFromStored({});
    assert.notEqual(first.rateLimits, second.rateLimits);
    assert.notEqual(first.conversionGuard, second.conversionGuard);
  });
});
