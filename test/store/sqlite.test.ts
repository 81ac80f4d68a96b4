import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { storeContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-sqlite-'));
storeContract(
  'sqlite',
  () => openSqliteStore({ path: join(dir, 'otpd.db') }),
  async () => rmSync(dir, { recursive: true, force: true }),
);
