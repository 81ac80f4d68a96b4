import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { ConfigFileError, loadConfigFile, type FileConfig } from './config-file.js';

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
  secretSource: 'env' | 'generated' | 'file' | 'secret-file';
  /** Delays between webhook delivery attempts (docs/audit-and-events.md); attempts = length + 1. */
  webhookRetryScheduleMs: number[];
  /** How long one webhook delivery may take. */
  webhookTimeoutMs: number;
  apiKey: string | undefined;
  devOutbox: string | undefined;
  redis: { urls: string[]; cluster: boolean; prefix: string } | undefined;
  logLevel: string;
  trustProxy: boolean;
  /** How long finished verifications are kept before the background cleanup removes them. */
  retentionMs: number;
  /** The config file (`OTPD_CONFIG`): providers, templates, outbox tuning, apps (src/config-file.ts). */
  file: FileConfig | undefined;
  /** When set, `GET /metrics` requires `Authorization: Bearer <this>` (docs/observability.md). */
  metricsToken: string | undefined;
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

/** The Standard Webhooks retry schedule (Svix's): about 27 hours of retries over 8 attempts. */
const DEFAULT_WEBHOOK_RETRY_SCHEDULE = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseSchedule(text: string): number[] | undefined {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length < 1 || parts.length > 20) return undefined;
  const out: number[] = [];
  for (const part of parts) {
    const match = /^(\d{1,9})(ms|s|m|h)$/.exec(part);
    if (!match) return undefined;
    const ms = Number(match[1]) * DURATION_UNITS[match[2]!]!;
    if (ms < 1 || ms > 86_400_000) return undefined;
    out.push(ms);
  }
  return out;
}

/** A secret from a file, trimmed; the problem names the variable and the file, never the content. */
function secretFromFile(variable: string, path: string, problems: string[]): string | undefined {
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8').trim();
  } catch (error) {
    problems.push(`${variable}: cannot read ${show(path)} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  if (text.length === 0) {
    problems.push(`${variable}: ${show(path)} is empty`);
    return undefined;
  }
  return text;
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
  // OTPD_SECRET_FILE / OTPD_SECRET_PREVIOUS_FILE: the secrets from files (Docker and Kubernetes secrets),
  // so they stay out of the environment, `ps` and crash dumps of it.
  if (env.OTPD_SECRET_FILE) {
    if (secret !== undefined) problems.push('OTPD_SECRET_FILE: set either OTPD_SECRET or OTPD_SECRET_FILE, not both');
    else {
      secret = secretFromFile('OTPD_SECRET_FILE', env.OTPD_SECRET_FILE, problems);
      secretSource = 'secret-file';
    }
  }
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    problems.push(`OTPD_SECRET: must be at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`), got ${secret.length}`);
  }
  let previousSecret = env.OTPD_SECRET_PREVIOUS || undefined;
  if (env.OTPD_SECRET_PREVIOUS_FILE) {
    if (previousSecret !== undefined) problems.push('OTPD_SECRET_PREVIOUS_FILE: set either OTPD_SECRET_PREVIOUS or OTPD_SECRET_PREVIOUS_FILE, not both');
    else previousSecret = secretFromFile('OTPD_SECRET_PREVIOUS_FILE', env.OTPD_SECRET_PREVIOUS_FILE, problems);
  }
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

  const metricsToken = env.OTPD_METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,200}$/.test(metricsToken)) problems.push('OTPD_METRICS_TOKEN: must be 16 to 200 printable characters without spaces');

  let file: FileConfig | undefined;
  if (env.OTPD_CONFIG) {
    try {
      file = loadConfigFile(resolve(env.OTPD_CONFIG), env);
    } catch (error) {
      if (!(error instanceof ConfigFileError)) throw error;
      problems.push(...error.problems.map((problem) => `OTPD_CONFIG (${env.OTPD_CONFIG}): ${problem}`));
    }
  }

  let webhookRetryScheduleMs = DEFAULT_WEBHOOK_RETRY_SCHEDULE;
  if (env.OTPD_WEBHOOK_RETRY_SCHEDULE) {
    const parsed = parseSchedule(env.OTPD_WEBHOOK_RETRY_SCHEDULE);
    if (parsed === undefined) problems.push(`OTPD_WEBHOOK_RETRY_SCHEDULE: must be 1 to 20 comma-separated delays of at most 24h, each a number and ms, s, m or h (e.g. 5s,5m,30m,2h), got ${show(env.OTPD_WEBHOOK_RETRY_SCHEDULE)}`);
    else webhookRetryScheduleMs = parsed;
  }
  let webhookTimeoutMs = 10_000;
  if (env.OTPD_WEBHOOK_TIMEOUT) {
    if (!/^\d+$/.test(env.OTPD_WEBHOOK_TIMEOUT) || Number(env.OTPD_WEBHOOK_TIMEOUT) < 1 || Number(env.OTPD_WEBHOOK_TIMEOUT) > 60) problems.push(`OTPD_WEBHOOK_TIMEOUT: must be an integer from 1 to 60 (seconds), got ${show(env.OTPD_WEBHOOK_TIMEOUT)}`);
    else webhookTimeoutMs = Number(env.OTPD_WEBHOOK_TIMEOUT) * 1000;
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
    webhookRetryScheduleMs,
    webhookTimeoutMs,
    apiKey,
    devOutbox,
    redis,
    logLevel,
    trustProxy: trustProxyText === '1' || trustProxyText === 'true',
    retentionMs,
    file,
    metricsToken,
  };
}
