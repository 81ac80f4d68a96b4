import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { newId } from '../../src/core/ids.js';
import { defaultSettings } from '../../src/core/settings.js';
import { isOtpdError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { openSqliteThreadStore, SqliteThreadStore } from '../../src/store/sqlite/thread.js';
import type { AppRecord } from '../../src/store/store.js';
import { pendingVerification } from '../support/fixtures.js';
import { storeContract, TEST_ROUTING_KEY } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-sqlite-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The whole contract again, through the thread: what the services get from openStore.
storeContract('sqlite on its thread', () => openSqliteThreadStore({ path: join(dir, 'contract.db') }));

function app(): AppRecord {
  const now = Date.now();
  return { id: newId('app'), name: `thread-${Math.random().toString(36).slice(2)}`, settings: defaultSettings(), createdAt: now, updatedAt: now };
}

describe('SQLite store on its own thread', () => {
  it('is what openStore opens for SQLite', async () => {
    const store = await openStore({ backend: 'sqlite', path: join(dir, 'open-store.db'), routingKey: TEST_ROUTING_KEY });
    try {
      assert.ok(store instanceof SqliteThreadStore);
      assert.equal(store.backend, 'sqlite');
    } finally {
      await store.close();
    }
  });

  it('a store error crosses as the same OtpdError, code, field and all', async () => {
    const store = await openSqliteThreadStore({ path: join(dir, 'errors.db') });
    try {
      await assert.rejects(store.listAudit('app_x', {}, 'not-a-cursor', 10), (error: unknown) => {
        assert.ok(isOtpdError(error));
        assert.equal(error.code, 'VALIDATION');
        assert.deepEqual(error.errors, [{ field: 'cursor', message: 'is not a cursor this server issued' }]);
        return true;
      });
      // A failed call leaves the thread serving the next one.
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('answers the writes of one turn after their commit, in one batch, and they are on disk for another connection', async () => {
    const path = join(dir, 'batch.db');
    const store = await openSqliteThreadStore({ path });
    const tenant = app();
    await store.insertApp(tenant);
    const now = Date.now();
    const records = Array.from({ length: 50 }, (_, i) => pendingVerification(TEST_ROUTING_KEY, tenant.id, `+1555000${String(i).padStart(4, '0')}`, now));
    const results = await Promise.all(records.map((record) => store.createVerification(record, now)));
    assert.equal(results.length, 50);
    const reader = await openSqliteStore({ path, checkpoint: false });
    try {
      for (const record of records) assert.equal((await reader.getVerification(tenant.id, record.id))?.id, record.id);
    } finally {
      await reader.close();
      await store.close();
    }
  });

  it('close answers every call made before it, then refuses new ones by name', async () => {
    const store = await openSqliteThreadStore({ path: join(dir, 'close.db') });
    const tenant = app();
    const inserted = store.insertApp(tenant);
    const closed = store.close();
    await inserted;
    await closed;
    await assert.rejects(store.getApp(tenant.id), (error: unknown) => isOtpdError(error) && error.code === 'STORE_UNAVAILABLE');
    const reopened = await openSqliteThreadStore({ path: join(dir, 'close.db') });
    try {
      assert.equal((await reopened.getApp(tenant.id))?.name, tenant.name);
    } finally {
      await reopened.close();
    }
  });

  it('a database it cannot open fails the open with the reason and its code', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    await assert.rejects(openSqliteThreadStore({ path: join(file, 'otpd.db') }), (error: unknown) => {
      // Its directory cannot be made: the file is in the way.
      assert.equal((error as { code?: string }).code, 'EEXIST');
      assert.match((error as Error).message, /a-file/);
      return true;
    });
  });

  it('a process that forgets to close the store still exits once nothing is owed; one that awaits a write exits after it', () => {
    const module = new URL('../../src/store/sqlite/thread.ts', import.meta.url).href;
    const path = join(dir, 'exit.db');
    const script = `
      const { openSqliteThreadStore } = await import(${JSON.stringify(module)});
      const store = await openSqliteThreadStore({ path: ${JSON.stringify(path)} });
      const now = Date.now();
      await store.insertApp({ id: 'app_exit', name: 'exit', settings: {}, createdAt: now, updatedAt: now });
      console.log('written');`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.signal, null, `the process did not exit by itself: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /written/);
  });

  it('a thread that dies fails what it owed and what follows, as STORE_UNAVAILABLE', async () => {
    const store = await openSqliteThreadStore({ path: join(dir, 'dies.db') });
    const thread = (store as unknown as { worker: import('node:worker_threads').Worker }).worker;
    const owed = store.ping();
    await thread.terminate();
    await assert.rejects(owed, (error: unknown) => isOtpdError(error) && error.code === 'STORE_UNAVAILABLE');
    await assert.rejects(store.ping(), (error: unknown) => isOtpdError(error) && error.code === 'STORE_UNAVAILABLE');
    await store.close();
  });
});
