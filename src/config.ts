import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';

/**
 * Process configuration from environment variables, validated in one place at start-up. Every bad value
 * is reported with the variable's name, the rule and the value seen, all at once (docs/configuration.md).
 * Per-app settings live in the store (src/core/settings.ts); this is only what the process needs.
 */
export interface Config {
  production: boolean;
  host: string;
  port: number;
  publicUrl: string | undefined;
  database: string;
  dataDir: string;
  secret: string;
  previousSecret: string | undefined;
  /** Where the secret came from, for the start-up banner (never the secret itself). */
  secretSource: 'env' | 'generated' | 'file';
  apiKey: string | undefined;
  devOutbox: string | undefined;
  redis: { urls: string[]; cluster: boolean; prefix: string } | undefined;
  logLevel: string;
  trustProxy: boolean;
  /** How long finished verifications are kept before the background cleanup removes them. */
  retentionMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const MIN_SECRET_LENGTH = 32;

function show(value: string): string {
  return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
}

/** Reads or creates `secret` in the data directory (mode 0600): a development convenience only. */
function developmentSecret(dataDir: string): { secret: string; source: 'generated' | 'file' } {
  const file = join(dataDir, 'secret');
  if (existsSync(file)) return { secret: readFileSync(file, 'utf8').trim(), source: 'file' };
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secret, source: 'generated' };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const production = env.NODE_ENV === 'production';

  const host = env.OTPD_HOST?.trim() || '127.0.0.1';

  let port = 8080;
  if (env.OTPD_PORT !== undefined && env.OTPD_PORT !== '') {
    if (!/^\d+$/.test(env.OTPD_PORT) || Number(env.OTPD_PORT) > 65535) problems.push(`OTPD_PORT: must be an integer from 0 to 65535 (0 picks a free port), got ${show(env.OTPD_PORT)}`);
    else port = Number(env.OTPD_PORT);
  }

  let publicUrl: string | undefined;
  if (env.OTPD_PUBLIC_URL) {
    try {
      const url = new URL(env.OTPD_PUBLIC_URL);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
      publicUrl = url.href.replace(/\/$/, '');
    } catch {
      problems.push(`OTPD_PUBLIC_URL: must be an http:// or https:// URL, got ${show(env.OTPD_PUBLIC_URL)}`);
    }
  }

  const database = resolve(env.OTPD_DATABASE?.trim() || './data/otpd.db');
  const dataDir = dirname(database);

  let redis: Config['redis'];
  if (env.OTPD_REDIS_URL) {
    const urls = env.OTPD_REDIS_URL.split(/[\s,]+/).filter(Boolean);
    for (const url of urls) {
      try {
        const parsed = new URL(url);
        if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('scheme');
      } catch {
        problems.push(`OTPD_REDIS_URL: each entry must be a redis:// or rediss:// URL, got ${show(url)}`);
      }
    }
    const clusterFlag = env.OTPD_REDIS_CLUSTER;
    if (clusterFlag !== undefined && !['', '0', '1', 'true', 'false'].includes(clusterFlag)) problems.push(`OTPD_REDIS_CLUSTER: must be 1 or 0, got ${show(clusterFlag)}`);
    redis = { urls, cluster: clusterFlag === '1' || clusterFlag === 'true' || urls.length > 1, prefix: env.OTPD_REDIS_PREFIX ?? 'otpd:' };
  } else if (env.OTPD_REDIS_CLUSTER === '1') {
    problems.push('OTPD_REDIS_CLUSTER: set OTPD_REDIS_URL to the cluster nodes too');
  }

  // An empty variable counts as unset, as shells and compose files often leave them.
  let secret = env.OTPD_SECRET || undefined;
  let secretSource: Config['secretSource'] = 'env';
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    problems.push(`OTPD_SECRET: must be at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`), got ${secret.length}`);
  }
  const previousSecret = env.OTPD_SECRET_PREVIOUS || undefined;
  if (previousSecret !== undefined && previousSecret.length < MIN_SECRET_LENGTH) problems.push(`OTPD_SECRET_PREVIOUS: must be at least ${MIN_SECRET_LENGTH} characters, got ${previousSecret.length}`);
  if (!secret && production) problems.push('OTPD_SECRET: required when NODE_ENV=production (a generated development secret is refused there)');

  const apiKey = env.OTPD_API_KEY || undefined;
  if (apiKey !== undefined && !/^[\x21-\x7e]{16,200}$/.test(apiKey)) problems.push('OTPD_API_KEY: must be 16 to 200 printable characters without spaces');

  const devOutbox = env.OTPD_DEV_OUTBOX ? resolve(env.OTPD_DEV_OUTBOX) : undefined;
  if (devOutbox && production) problems.push('OTPD_DEV_OUTBOX: refused when NODE_ENV=production (it writes codes in plain text)');

  const logLevel = env.OTPD_LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`OTPD_LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}, got ${show(logLevel)}`);

  const trustProxyText = env.OTPD_TRUST_PROXY ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(trustProxyText)) problems.push(`OTPD_TRUST_PROXY: must be 1 or 0, got ${show(trustProxyText)}`);

  let retentionMs = 30 * 86_400_000;
  if (env.OTPD_RETENTION_DAYS) {
    if (!/^\d+$/.test(env.OTPD_RETENTION_DAYS) || Number(env.OTPD_RETENTION_DAYS) < 1 || Number(env.OTPD_RETENTION_DAYS) > 3650) problems.push(`OTPD_RETENTION_DAYS: must be an integer from 1 to 3650, got ${show(env.OTPD_RETENTION_DAYS)}`);
    else retentionMs = Number(env.OTPD_RETENTION_DAYS) * 86_400_000;
  }

  if (problems.length > 0) throw new ConfigError(problems);

  if (!secret) {
    const generated = developmentSecret(dataDir);
    secret = generated.secret;
    secretSource = generated.source;
  }

  return {
    production,
    host,
    port,
    publicUrl,
    database,
    dataDir,
    secret,
    previousSecret,
    secretSource,
    apiKey,
    devOutbox,
    redis,
    logLevel,
    trustProxy: trustProxyText === '1' || trustProxyText === 'true',
    retentionMs,
  };
}
