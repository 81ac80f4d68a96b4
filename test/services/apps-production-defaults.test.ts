import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/core/keyring.js';
import { defaultSettings, SETTINGS } from '../../src/core/settings.js';
import { AppsService } from '../../src/services/apps.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

describe('production defaults of app settings', () => {
  it('apps created with NODE_ENV=production get keyless access and the signature helper switched off (decisions 8)', () => {
    assert.equal(defaultSettings().keylessAccess, true);
    assert.equal(defaultSettings().signatureHelper, true);
    assert.equal(defaultSettings(true).keylessAccess, false);
    assert.equal(defaultSettings(true).signatureHelper, false);
    // Settings without a production default are the same either way.
    const production = defaultSettings(true) as unknown as Record<string, unknown>;
    const development = defaultSettings(false) as unknown as Record<string, unknown>;
    for (const [key, definition] of Object.entries(SETTINGS)) {
      if (!('productionDefault' in definition)) assert.deepEqual(production[key], development[key], key);
    }
  });

  it('AppsService of a production process creates apps, the default one included, with those defaults; explicit settings win', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-prod-defaults-'));
    const store = await openSqliteStore({ path: join(dir, 'otpd.db') });
    try {
      const apps = new AppsService(store, new Keyring('x'.repeat(32)), Date.now, true);
      const { app } = await apps.ensureDefaultApp(undefined);
      assert.equal(app.settings.keylessAccess, false);
      assert.equal(app.settings.signatureHelper, false);
      const open = await apps.create('open', { keylessAccess: true });
      assert.equal(open.app.settings.keylessAccess, true);
      const development = new AppsService(store, new Keyring('x'.repeat(32)), Date.now);
      assert.equal((await development.create('dev', {})).app.settings.keylessAccess, true);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
