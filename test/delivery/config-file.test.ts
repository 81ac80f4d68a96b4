import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigFileError, parseConfigDocument } from '../../src/config-file.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { TEST_SECRET } from '../helper.js';
import { call, runCli, spawnServer, type ServerProcess } from '../support/cli.js';
import { FakeProviders, until, WEBHOOK_SECRET, type FakeProvider } from '../support/fake-providers.js';
import { phone } from './setup.js';

function problems(document: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfigDocument(document, 'otpd.yaml', env);
  } catch (error) {
    if (error instanceof ConfigFileError) return error.problems;
    throw error;
  }
  return [];
}

describe('config file validation', () => {
  it('accepts a full file and fills defaults; secrets come from ${ENV} references', async () => {
    const file = parseConfigDocument(
      {
        providers: {
          'twilio-main': { type: 'twilio', accountSid: 'AC1', authToken: '${TWILIO_AUTH_TOKEN}', from: '+15550001111' },
          mail: { type: 'smtp', host: 'smtp.example.com', from: 'no-reply@example.com', user: 'u', password: '${SMTP_PASSWORD}' },
        },
        templates: { sms: { 'pt-BR': 'Código {code}' } },
        apps: { shop: { routes: { sms: ['twilio-main', 'voice:twilio-main'], email: ['mail'] }, settings: { ttl: 300, smsAppHash: 'FA+9qCX9VSu' } } },
      },
      'otpd.yaml',
      { TWILIO_AUTH_TOKEN: 'token-from-env', SMTP_PASSWORD: 'pw' },
    );
    assert.equal((file.providers['twilio-main'] as { authToken: string }).authToken, 'token-from-env');
    assert.equal((file.providers['twilio-main'] as { baseUrl: string }).baseUrl, 'https://api.twilio.com');
    assert.equal((file.providers.mail as { port: number }).port, 587);
    assert.deepEqual(file.apps.shop!.settings, { ttl: 300, smsAppHash: 'FA+9qCX9VSu', smsRoute: ['twilio-main', 'voice:twilio-main'], emailRoute: ['mail'] });
    assert.deepEqual(file.templates.sms, { 'pt-br': 'Código {code}' });
    assert.equal(file.outbox.maxTries, 5);
  });

  it('names the path and the rule of every problem, all at once', async () => {
    const found = problems({
      providers: {
        'twilio-main': { type: 'twilio', accountSid: 'AC1', authToken: '${TWILIO_AUTH_TOKEN}', from: '555', baseUrl: 'ftp://x' },
        hook: { type: 'webhook', url: 'https://hooks.example/otp', secret: 'plain-secret' },
        log: { type: 'webhook', url: 'https://x.example', secret: WEBHOOK_SECRET },
        odd: { type: 'pigeon' },
        mail: { type: 'smtp', host: 'smtp.example.com', from: 'me@example.com', colour: 'blue' },
      },
      templates: { sms: { en: 'no code here', fr: '{code} {name}' } },
      apps: {
        shop: { routes: { sms: ['nope', 'email:mail'], whatsapp: ['twilio-main'] }, settings: { ttl: 5, colour: 'red' } },
      },
      outbox: { maxTries: 0, concurrency: 0 },
      extra: {},
    });
    const expected = [
      'providers.twilio-main.authToken: ${TWILIO_AUTH_TOKEN} is not set',
      'providers.twilio-main.baseUrl: must be an http:// or https:// URL, got "ftp://x"',
      'providers.twilio-main.from: must be an E.164 number such as +15555550100',
      'providers.hook.secret: must start with whsec_',
      'providers.log: log is a built-in name; choose another',
      'providers.odd.type: must be one of twilio, vonage, msg91, smtp, webhook, got "pigeon"',
      'providers.mail.colour: is not a known field here',
      'templates.sms.en: must contain {code}',
      'templates.sms.fr: unknown placeholder {name}',
      'apps.shop.settings.ttl: must be from 30 to 86400',
      'apps.shop.settings.colour: is not a setting',
      'apps.shop.routes.sms[0]: no provider named "nope"',
      'apps.shop.routes.sms[1]: email cannot stand in for sms',
      'apps.shop.routes.whatsapp[0]: provider twilio-main does not send whatsapp',
      'outbox.maxTries: must be a number from 1 to 20',
      'outbox.concurrency: must be a number from 1 to 10000',
      'extra: is not a known section',
    ];
    for (const text of expected) assert.ok(found.some((p) => p.startsWith(text)), `missing "${text}" in:\n${found.join('\n')}`);
  });

  it('checks SMS length: at most 10 segments, and 140 bytes with an SMS Retriever hash', async () => {
    const long = problems({ templates: { sms: { en: '{code} ' + 'x'.repeat(1600) } } });
    assert.match(long.join('\n'), /^templates\.sms\.en: renders to 11 GSM-7 segments; at most 10 are sent$/m);
    const hashed = problems({ apps: { shop: { settings: { smsAppHash: 'FA+9qCX9VSu' }, templates: { sms: { hi: '{code} आपका सत्यापन कोड है। इसे किसी से साझा न करें। {app}' } } } } });
    assert.match(hashed.join('\n'), /^apps\.shop\.templates\.sms\.hi: with the SMS Retriever hash it is \d+ bytes \(UCS-2\); Android reads at most 140$/m);
  });

  it('OTPD_CONFIG problems stop the start with the variable, the file and the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'otpd-cfg-'));
    try {
      const path = join(dir, 'otpd.yaml');
      writeFileSync(path, 'providers:\n  twilio-main:\n    type: twilio\n    accountSid: AC1\n    authToken: ${TWILIO_AUTH_TOKEN}\n    from: "+15550001111"\n');
      assert.throws(
        () => loadConfig({ OTPD_CONFIG: path, OTPD_DATABASE: join(dir, 'db'), OTPD_SECRET: TEST_SECRET }),
        (error: unknown) => error instanceof ConfigError && error.problems.includes(`OTPD_CONFIG (${path}): providers.twilio-main.authToken: \${TWILIO_AUTH_TOKEN} is not set`),
      );
      writeFileSync(path, 'providers: [oops');
      assert.throws(() => loadConfig({ OTPD_CONFIG: path, OTPD_DATABASE: join(dir, 'db'), OTPD_SECRET: TEST_SECRET }), /OTPD_CONFIG .*: cannot parse it/);
      assert.throws(() => loadConfig({ OTPD_CONFIG: join(dir, 'missing.yaml'), OTPD_DATABASE: join(dir, 'db'), OTPD_SECRET: TEST_SECRET }), /cannot read the file \(ENOENT\)/);
      writeFileSync(join(dir, 'otpd.json'), JSON.stringify({ outbox: { maxTries: 2 } }));
      assert.equal(loadConfig({ OTPD_CONFIG: join(dir, 'otpd.json'), OTPD_DATABASE: join(dir, 'db'), OTPD_SECRET: TEST_SECRET }).file?.outbox.maxTries, 2, '.json files are JSON');

      const cli = (await runCli(['serve'], { OTPD_CONFIG: path, OTPD_DATABASE: join(dir, 'db'), OTPD_SECRET: TEST_SECRET, OTPD_PORT: '0' }));
      assert.equal(cli.code, 2);
      assert.match(cli.stderr, /OTPD_CONFIG \(.*otpd\.yaml\): cannot parse it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config file: apps seeded at start, reload on SIGHUP', () => {
  let fakes: FakeProviders;
  let first: FakeProvider;
  let second: FakeProvider;
  let dir: string;
  let path: string;
  let server: ServerProcess | undefined;
  const apiKey = 'otpd_test_key_reload_app_00001';

  function file(hookUrl: string, extra = ''): string {
    return `
providers:
  hook:
    type: webhook
    url: ${hookUrl}/messages
    secret: \${HOOK_SECRET}
apps:
  shop:
    apiKey: ${apiKey}
    routes: { sms: [hook] }
    settings: { codeLength: 8 }
outbox:
  pollIntervalMs: 50
${extra}`;
  }

  before(async () => {
    fakes = await FakeProviders.start();
    first = fakes.add('webhook', 'first');
    second = fakes.add('webhook', 'second');
    dir = mkdtempSync(join(tmpdir(), 'otpd-reload-'));
    path = join(dir, 'otpd.yaml');
    writeFileSync(path, file(first.baseUrl));
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await fakes?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file\'s apps, and on SIGHUP switches providers and settings without dropping requests', async () => {
    server = await spawnServer({ OTPD_CONFIG: path, OTPD_DATABASE: join(dir, 'otpd.db'), OTPD_SECRET: TEST_SECRET, HOOK_SECRET: WEBHOOK_SECRET, OTPD_LOG_LEVEL: 'info' });
    const before = await call(server.url, 'POST', '/v1/verifications', apiKey, { to: phone() });
    assert.equal(before.status, 201, 'the app and its key come from the file');
    const sentBefore = await until('the first message', () => first.accepted().find((r) => r.json?.data?.verificationId === before.body.id));
    assert.equal(sentBefore.json.data.code.length, 8, 'the app has the file\'s settings');

    // Requests keep flowing while the file changes and the signal arrives.
    let stop = false;
    const failures: number[] = [];
    const traffic = (async () => {
      while (!stop) {
        const health = await fetch(`${server!.url}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (health.status !== 200) failures.push(health.status);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    writeFileSync(path, file(second.baseUrl).replace('codeLength: 8', 'codeLength: 7'));
    server.child.kill('SIGHUP');
    await until('the reload to be logged', () => /config reloaded/.test(server!.stdout()));
    const after = await call(server.url, 'POST', '/v1/verifications', apiKey, { to: phone() });
    assert.equal(after.status, 201);
    const sentAfter = await until('the message through the new provider URL', () => second.accepted().find((r) => r.json?.data?.verificationId === after.body.id));
    assert.equal(sentAfter.json.data.code.length, 7, 'the settings were updated from the file');
    assert.equal(first.requests.filter((r) => r.json?.data?.verificationId === after.body.id).length, 0);

    // A broken file is refused, and the running configuration stays.
    writeFileSync(path, file(first.baseUrl, 'unknown: 1'));
    server.child.kill('SIGHUP');
    await until('the refusal to be logged', () => /config reload refused/.test(server!.stdout()));
    assert.match(server.stdout(), /unknown: is not a known section/);
    const still = await call(server.url, 'POST', '/v1/verifications', apiKey, { to: phone() });
    await until('the message through the kept provider', () => second.accepted().find((r) => r.json?.data?.verificationId === still.body.id));
    stop = true;
    await traffic;
    assert.deepEqual(failures, [], 'no request failed during the reloads');
    assert.equal(server.child.exitCode, null, 'still running');
  });
});
