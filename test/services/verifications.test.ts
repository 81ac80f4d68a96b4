import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createServices, keyringFrom, type Services } from '../../src/services/index.js';
import type { AppRecord } from '../../src/store/store.js';
import { openStoreFor } from '../../src/server.js';
import { TEST_SECRET, type OutboxMessage } from '../helper.js';
import { readFileSync, existsSync } from 'node:fs';
import { NO_REQUEST } from '../../src/core/rate-limits.js';

/** Service-level tests with an injected clock on a real SQLite file: expiry needs time to pass. */
const dir = mkdtempSync(join(tmpdir(), 'otpd-svc-'));
const outbox = join(dir, 'outbox.jsonl');
let now = Date.UTC(2031, 0, 1);
let services: Services;
let close: () => Promise<void>;
let app: AppRecord;

before(async () => {
  const config = loadConfig({ OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, OTPD_DEV_OUTBOX: outbox });
  const store = await openStoreFor(config);
  services = createServices({ config, store, keyring: keyringFrom(config), logger: createLogger('silent'), clock: () => now });
  app = (await services.apps.ensureDefaultApp(undefined)).app;
  close = async () => {
    await services.drain();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
});
after(() => close());

async function codeOf(id: string, nth = 1): Promise<string> {
  await services.drain();
  const lines = existsSync(outbox) ? readFileSync(outbox, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as OutboxMessage) : [];
  const found = lines.filter((m) => m.verificationId === id);
  assert.ok(found.length >= nth, `no message #${nth} for ${id}`);
  return found[nth - 1]!.code;
}

describe('verifications service with a controlled clock', () => {
  it('O2: a code is valid until ttl and rejected one second after', async () => {
    const a = await services.verifications.create(app, { to: '+15555552001', ttl: 60 }, NO_REQUEST);
    const codeA = await codeOf(a.id);
    now += 59_000;
    const b = await services.verifications.create(app, { to: '+15555552002', ttl: 60 }, NO_REQUEST);
    const codeB = await codeOf(b.id);
    assert.equal((await services.verifications.check(app, a.id, codeA, NO_REQUEST)).valid, true);
    now += 60_000 + 1_000;
    const late = await services.verifications.check(app, b.id, codeB, NO_REQUEST);
    assert.equal(late.valid, false);
    assert.equal(late.verification.status, 'expired');
  });

  it('resend moves expiry by the verification\'s own ttl and keeps the code length', async () => {
    const v = await services.verifications.create(app, { to: '+15555552003', ttl: 120, codeLength: 8 }, NO_REQUEST);
    // Sent before the resend: a resend replaces a message still waiting in the outbox (docs/delivery.md).
    await codeOf(v.id);
    now += 31_000;
    const resent = await services.verifications.resend(app, v.id, NO_REQUEST);
    assert.equal(resent.expiresAt, now + 120_000);
    assert.match(await codeOf(v.id, 2), /^\d{8}$/);
  });

  it('cleanup removes verifications that ended longer ago than the retention', async () => {
    const v = await services.verifications.create(app, { to: '+15555552004', ttl: 30 }, NO_REQUEST);
    now += 31_000 + 86_400_000;
    assert.ok((await services.verifications.purge(86_400_000)) >= 1);
    await assert.rejects(services.verifications.get(app, v.id));
  });
});
