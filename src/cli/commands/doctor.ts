import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../../config.js';
import { ed25519Implementation } from '../../core/ed25519.js';
import { openStoreFor } from '../../server.js';
import { loadMigrations } from '../../store/sqlite/migrate.js';
import type { Store } from '../../store/store.js';
import { printJson } from '../context.js';

/**
 * `otpd doctor`: checks what a start would need and what production needs, without changing anything
 * (no secret is generated, no migration is applied), prints every finding, and exits 1 if any check
 * failed. Warnings are things that work but deserve a look.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  check: string;
  status: CheckStatus;
  detail: string;
}

const MIN_NODE: [number, number] = [20, 19];
const STORE_TIMEOUT_MS = 5_000;

class Findings {
  readonly list: Finding[] = [];
  add(check: string, status: CheckStatus, detail: string): void {
    this.list.push({ check, status, detail });
  }
  get failed(): boolean {
    return this.list.some((finding) => finding.status === 'fail');
  }
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function octal(bits: number): string {
  return '0' + bits.toString(8).padStart(3, '0');
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${STORE_TIMEOUT_MS / 1000} s`)), STORE_TIMEOUT_MS);
    }),
  ]);
}

function checkNode(findings: Findings): void {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const fits = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  findings.add('node', fits ? 'ok' : 'fail', fits ? `Node.js ${process.versions.node}` : `Node.js ${process.versions.node} is older than ${MIN_NODE.join('.')}, which otpd needs`);
}

/** Who signs the approval receipts: libsodium when the optional addon loaded, node:crypto (same signatures, twice the CPU) otherwise. */
function checkSigning(findings: Findings): void {
  if (ed25519Implementation === 'libsodium') findings.add('receipts', 'ok', 'Ed25519 receipts are signed by libsodium (sodium-native)');
  else findings.add('receipts', 'warn', 'Ed25519 receipts are signed by node:crypto: the optional sodium-native addon is not installed or has no build for this platform; receipts are the same, each costs about twice the CPU (docs/audit-and-events.md)');
}

/**
 * Loads the configuration the way `serve` does, except that a missing development secret is not
 * generated: doctor reads the existing file, or stands in a placeholder so the rest can be checked.
 */
function checkConfig(findings: Findings, env: NodeJS.ProcessEnv): Config | undefined {
  const probe = { ...env };
  let secretNote: { status: CheckStatus; detail: string } | undefined;
  if (!env.OTPD_SECRET && !env.OTPD_SECRET_FILE && env.NODE_ENV !== 'production') {
    const database = env.OTPD_DATABASE?.trim() || './data/otpd.db';
    const file = join(dirname(database), 'secret');
    if (existsSync(file)) {
      probe.OTPD_SECRET = readFileSync(file, 'utf8').trim();
      const bits = mode(file);
      secretNote =
        bits & 0o077
          ? { status: 'fail', detail: `${file} is ${octal(bits)}: others can read the key of every code hash and secret; run chmod 600 ${file}` }
          : { status: 'warn', detail: `using the development secret in ${file} (0600); production needs OTPD_SECRET` };
    } else {
      probe.OTPD_SECRET = 'doctor-placeholder-secret-not-used-for-anything';
      secretNote = { status: 'warn', detail: `no OTPD_SECRET: the first start generates ${file}; production needs OTPD_SECRET` };
    }
  }
  try {
    const config = loadConfig(probe);
    findings.add('configuration', 'ok', `valid (${config.production ? 'production' : 'development'}, listening on ${config.host}:${config.port})`);
    findings.add('secret', secretNote?.status ?? 'ok', secretNote?.detail ?? `${env.OTPD_SECRET_FILE ? 'OTPD_SECRET_FILE' : 'OTPD_SECRET'} set${config.previousSecret ? ', a previous secret too (rotation in progress)' : ''}`);
    if (config.previousSecret && config.previousSecret === config.secret) findings.add('secret', 'warn', 'OTPD_SECRET_PREVIOUS equals OTPD_SECRET: the rotation does nothing');
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) findings.add('configuration', 'fail', problem);
    return undefined;
  }
}

/** Files that hold keys or provider credentials: nobody else may change them, and ideally not read them. */
function checkSensitiveFiles(findings: Findings, env: NodeJS.ProcessEnv, config: Config): void {
  const files: Array<[string, string | undefined, string]> = [
    ['secret', env.OTPD_SECRET_FILE, 'the key of every code hash and secret'],
    ['secret', env.OTPD_SECRET_PREVIOUS_FILE, 'the previous key'],
    ['config file', env.OTPD_CONFIG, 'provider credentials and where codes are sent'],
  ];
  for (const [check, path, holds] of files) {
    if (!path || !existsSync(path)) continue;
    const bits = mode(path);
    if (bits & 0o022) findings.add(check, 'fail', `${path} is ${octal(bits)}: others can change ${holds}; run chmod 640 ${path}`);
    else if (bits & 0o004) findings.add(check, 'warn', `${path} is ${octal(bits)}: everyone on this host can read ${holds}; run chmod 640 ${path}`);
  }
  if (config.file) findings.add('config file', 'ok', `${env.OTPD_CONFIG}: valid, ${Object.keys(config.file.providers).length} provider(s), ${Object.keys(config.file.apps).length} app(s)`);
}

function checkDataDir(findings: Findings, config: Config): void {
  const dir = config.dataDir;
  if (!existsSync(dir)) {
    findings.add('data directory', 'warn', `${dir} does not exist yet; the first start creates it`);
    return;
  }
  const bits = mode(dir);
  if (bits & 0o002) findings.add('data directory', 'fail', `${dir} is ${octal(bits)}: anyone can replace the database or the secret; run chmod 700 ${dir}`);
  try {
    accessSync(dir, constants.W_OK);
    if (!(bits & 0o002)) findings.add('data directory', 'ok', `${dir} (${octal(bits)}) is writable`);
  } catch {
    findings.add('data directory', 'fail', `${dir} is not writable by this user (SQLite needs to create its -wal and -shm files there)`);
  }
}

/** SQLite: reachability and schema version read without applying anything. Returns whether the store may be opened. */
function checkSqlite(findings: Findings, config: Config): boolean {
  const path = config.database;
  const latest = Math.max(0, ...loadMigrations().map((migration) => migration.version));
  if (!existsSync(path)) {
    findings.add('store', 'warn', `sqlite ${path} does not exist yet; the first start creates it`);
    findings.add('migrations', 'warn', `the schema (version ${latest}) is created at the first start`);
    return false;
  }
  const bits = mode(path);
  if (bits & 0o004) findings.add('store', 'warn', `${path} is ${octal(bits)} (readable by everyone): it holds destinations and encrypted secrets; run chmod 600 ${path}`);
  let version: number;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    const db = new Database(path, { readonly: true, fileMustExist: true, timeout: STORE_TIMEOUT_MS });
    try {
      version = db.pragma('user_version', { simple: true }) as number;
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      db.close();
    }
  } catch (error) {
    findings.add('store', 'fail', `sqlite ${path}: ${(error as Error).message}`);
    return false;
  }
  findings.add('store', 'ok', `sqlite ${path} is readable and writable`);
  if (version > latest) {
    findings.add('migrations', 'fail', `the database is at schema ${version}, newer than this otpd knows (${latest}): it was used by a newer otpd; upgrade otpd`);
    return false;
  }
  if (version < latest) {
    findings.add('migrations', 'warn', `schema ${version} of ${latest}: ${latest - version} migration(s) will be applied at the next start`);
    return false;
  }
  findings.add('migrations', 'ok', `schema ${version} is current`);
  return true;
}

/** Every provider an app's settings name must exist: the built-ins and the config file's. */
async function checkProviders(findings: Findings, config: Config, store: Store): Promise<void> {
  const known = new Set(['log', ...(config.devOutbox ? ['dev-outbox'] : []), ...Object.keys(config.file?.providers ?? {})]);
  const apps = await withTimeout(store.listApps(), 'the store');
  if (apps.length === 0) {
    findings.add('providers', 'warn', 'no apps yet: `otpd serve` creates the "default" app at its first start');
    return;
  }
  let problems = 0;
  for (const app of apps) {
    const settings = app.settings as unknown as Record<string, unknown>;
    const named = new Set<string>();
    if (typeof settings.deliveryProvider === 'string') named.add(settings.deliveryProvider);
    for (const [key, value] of Object.entries(settings)) {
      // Failover routes (smsRoute, emailRoute, …) list provider names, optionally as channel:provider.
      if (key.endsWith('Route') && Array.isArray(value)) for (const entry of value) if (typeof entry === 'string') named.add(entry.slice(entry.indexOf(':') + 1));
    }
    for (const name of named) {
      if (!known.has(name)) {
        problems++;
        findings.add('providers', 'fail', `app "${app.name}" sends through "${name}", which is not configured (known: ${[...known].join(', ')}); add it to the config file's providers or change the app's setting`);
      } else if (name === 'log' && config.production && !config.devOutbox) {
        problems++;
        findings.add('providers', 'fail', `app "${app.name}" sends through "log", which in production delivers nothing (it writes no code); configure a real provider`);
      }
    }
  }
  if (problems === 0) findings.add('providers', 'ok', `${apps.length} app(s); every provider they name is configured (${[...known].join(', ')})`);
}

function checkProduction(findings: Findings, config: Config): void {
  if (!config.production) return;
  if (!config.publicUrl) findings.add('production', 'warn', 'OTPD_PUBLIC_URL is not set: links (hosted page, provider callbacks) use the listening address');
  else if (!config.publicUrl.startsWith('https://')) findings.add('production', 'warn', `OTPD_PUBLIC_URL ${config.publicUrl} is not https`);
  const loopback = config.host === '127.0.0.1' || config.host === '::1' || config.host === 'localhost';
  if (!config.metricsToken && !loopback) findings.add('production', 'warn', `OTPD_METRICS_TOKEN is not set and otpd listens on ${config.host}: anyone who reaches the port can read /metrics`);
}

export async function runDoctor(env: NodeJS.ProcessEnv = process.env): Promise<Finding[]> {
  const findings = new Findings();
  checkNode(findings);
  checkSigning(findings);
  const config = checkConfig(findings, env);
  if (!config) return findings.list;
  checkSensitiveFiles(findings, env, config);
  checkProduction(findings, config);

  let openable: boolean;
  if (config.redis) {
    openable = false;
    findings.add('migrations', 'ok', 'redis keeps no schema to migrate');
  } else {
    checkDataDir(findings, config);
    openable = checkSqlite(findings, config);
  }

  let store: Store | undefined;
  try {
    if (config.redis || openable) {
      store = await withTimeout(openStoreFor(config), 'the store');
      await withTimeout(store.ping(), 'the store');
      if (config.redis) findings.add('store', 'ok', `redis ${config.redis.urls.join(', ')} answers`);
      await checkProviders(findings, config, store);
    } else {
      findings.add('providers', 'warn', 'not checked: the store is not ready (see above)');
    }
  } catch (error) {
    findings.add('store', 'fail', `${config.redis ? 'redis ' + config.redis.urls.join(', ') : 'sqlite ' + config.database}: ${(error as Error).message}`);
  } finally {
    await store?.close().catch(() => undefined);
  }
  return findings.list;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check configuration, store, migrations, providers and file permissions; exit 1 if anything is wrong')
    .option('--json', 'print JSON: {ok, findings: [{check, status, detail}]}')
    .action(async (options: { json?: boolean }) => {
      const findings = await runDoctor();
      const ok = !findings.some((finding) => finding.status === 'fail');
      if (options.json) printJson({ ok, findings });
      else {
        const label = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
        process.stdout.write(findings.map((f) => `${label[f.status]}  ${f.check.padEnd(14)} ${f.detail}`).join('\n') + '\n');
        process.stdout.write(ok ? 'otpd doctor: no problems found\n' : `otpd doctor: ${findings.filter((f) => f.status === 'fail').length} problem(s) found\n`);
      }
      // exit() rather than exitCode: a store that timed out may still hold a reconnecting client. Writes to
      // a pipe or file are synchronous on Linux and macOS, so nothing printed above is lost.
      process.exit(ok ? 0 : 1);
    });
}
