import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-cli-'));
const env = { OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: 'cli-secret-0123456789abcdefghijklmnopqrst' };
after(() => rmSync(dir, { recursive: true, force: true }));

describe('otpd apps / keys', () => {
  it('apps create --json prints name, apiKey and the dialect credentials', async () => {
    const result = (await runCli(['apps', 'create', 'shop', '--set', 'maxAttempts=3', '--api-calls-per-hour', '100', '--no-echo-code', '--json'], env));
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout);
    assert.deepEqual(Object.keys(printed).sort(), ['apiKey', 'appKey', 'encryptKey', 'name', 'partnerId']);
    assert.equal(printed.name, 'shop');
    assert.match(printed.apiKey, /^otpd_/);
    assert.match(printed.appKey, /^[0-9a-f]{64}$/);
    assert.equal(Buffer.from(printed.encryptKey, 'base64').length, 32);
    const shown = JSON.parse((await runCli(['apps', 'show', 'shop'], env)).stdout);
    assert.equal(shown.settings.maxAttempts, 3);
    assert.equal(shown.settings.apiCallsPerHour, 100);
    assert.equal(shown.settings.echoCode, false);
  });

  it('apps update --set changes a setting; a bad value names the setting and the rule', async () => {
    assert.equal((await runCli(['apps', 'update', 'shop', '--set', 'ttl=300'], env)).code, 0);
    assert.equal(JSON.parse((await runCli(['apps', 'show', 'shop'], env)).stdout).settings.ttl, 300);
    const bad = (await runCli(['apps', 'update', 'shop', '--set', 'ttl=5'], env));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ttl: must be from 30 to 86400/);
    const unknown = (await runCli(['apps', 'update', 'shop', '--set', 'colour=blue'], env));
    assert.match(unknown.stderr, /colour: is not a setting/);
    const missing = (await runCli(['apps', 'update', 'nope', '--set', 'ttl=60'], env));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no app named "nope"/);
  });

  it('refuses a duplicate or malformed app name', async () => {
    assert.match((await runCli(['apps', 'create', 'shop'], env)).stderr, /already exists/);
    assert.match((await runCli(['apps', 'create', 'Bad Name'], env)).stderr, /name: must be/);
  });

  it('keys create / list / revoke', async () => {
    const created = JSON.parse((await runCli(['keys', 'create', 'shop', '--json'], env)).stdout);
    assert.match(created.id, /^key_/);
    assert.match(created.apiKey, /^otpd_/);
    const listed = JSON.parse((await runCli(['keys', 'list', 'shop', '--json'], env)).stdout);
    assert.ok(listed.some((k: { id: string; revokedAt: string | null }) => k.id === created.id && k.revokedAt === null));
    assert.ok(!JSON.stringify(listed).includes(created.apiKey), 'listing never shows a key');
    assert.equal((await runCli(['keys', 'revoke', created.id], env)).code, 0);
    assert.equal((await runCli(['keys', 'revoke', created.id], env)).code, 1);
  });
});
