import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CHANNELS, type Channel } from './core/destination.js';
import { isSettingKey, validateSettingValue } from './core/settings.js';
import type { Msg91Config } from './delivery/msg91.js';
import { MAX_SMS_SEGMENTS, SMS_RETRIEVER_MAX_BYTES } from './delivery/segments.js';
import type { SmtpConfig } from './delivery/smtp.js';
import { secretProblem } from './delivery/standard-webhooks.js';
import { normalizeLocale, renderMessage, templateProblems, type CustomTemplates, type EmailTemplate } from './delivery/templates.js';
import type { TwilioConfig } from './delivery/twilio.js';
import { VONAGE_SIGNATURE_METHODS, type VonageConfig } from './delivery/vonage.js';
import type { WebhookConfig } from './delivery/webhook.js';
import { OtpdError } from './errors.js';

/**
 * The config file (`OTPD_CONFIG=otpd.yaml` or `.json`): delivery providers, message templates, outbox tuning,
 * and apps with their settings (docs/configuration.md). Strings may hold `${ENV_NAME}` references, so
 * secrets stay in the environment. Everything is validated at start (and on SIGHUP) and every problem is
 * reported with the path of the value: `providers.twilio-main.authToken: ${TWILIO_AUTH_TOKEN} is not set`.
 *
 * The database holds the live app settings (decisions 6): the file creates the apps it names and sets the
 * settings it names, at every start and reload; settings it does not name are left as they are.
 */

/** Provider settings; a Vonage callback token left out is derived by the registry. */
export type VonageFileConfig = Omit<VonageConfig, 'callbackToken'> & { callbackToken?: string };
export type ProviderConfig = TwilioConfig | VonageFileConfig | Msg91Config | SmtpConfig | WebhookConfig;
export type ProviderType = ProviderConfig['type'];

export interface OutboxOptions {
  /** How often each process looks for due messages. */
  pollIntervalMs: number;
  /** How long a claimed message is reserved for the process sending it. */
  leaseMs: number;
  /**
   * Provider calls one process makes at once. A provider answers in ~0.1–0.5 s, so this bounds what one
   * process sends per second (128 in flight: ~250–1,300 messages/s); messages beyond it wait in the outbox.
   */
  concurrency: number;
  /** Tries per send before the verification's delivery is `failed`. */
  maxTries: number;
  /** First retry delay; each further one doubles, with full jitter, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_OUTBOX_OPTIONS: OutboxOptions = { pollIntervalMs: 200, leaseMs: 60_000, concurrency: 128, maxTries: 5, retryBaseMs: 2_000, retryMaxMs: 300_000 };

export interface FileApp {
  /** Setting values the file names, validated (routes included as smsRoute etc.). */
  settings: Record<string, unknown>;
  templates: CustomTemplates;
  /** Used as the app's first API key when the file creates the app. */
  apiKey?: string;
}

export interface FileConfig {
  path: string;
  outbox: OutboxOptions;
  providers: Record<string, ProviderConfig>;
  templates: CustomTemplates;
  apps: Record<string, FileApp>;
}

export class ConfigFileError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid config file:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigFileError';
  }
}

/** Providers every process has without configuration (src/delivery/registry.ts). */
const BUILT_IN_PROVIDERS = ['log', 'noop', 'dev-outbox'];
/** Provider names the code reserves: the built-in providers and the marker of test deliveries. */
export const RESERVED_PROVIDER_NAMES = [...BUILT_IN_PROVIDERS, 'test'];
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PROVIDER_TYPES: ProviderType[] = ['twilio', 'vonage', 'msg91', 'smtp', 'webhook'];
const DEFAULT_BASE_URLS: Record<string, string> = { twilio: 'https://api.twilio.com', vonage: 'https://rest.nexmo.com', msg91: 'https://control.msg91.com' };
const ROUTE_SETTINGS: Record<Channel, string> = { sms: 'smsRoute', email: 'emailRoute', voice: 'voiceRoute', whatsapp: 'whatsappRoute' };

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Replaces `${NAME}` in every string with the environment's value; `$${` writes a literal `${`. */
function substitute(value: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$?)\{([^}]*)\}/g, (match, escaped: string, name: string) => {
      if (escaped) return match.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push(`${path}: \${${name}} is not a valid environment variable reference`);
        return '';
      }
      const found = env[name];
      if (found === undefined || found === '') {
        problems.push(`${path}: \${${name}} is not set`);
        return '';
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substitute(item, `${path}[${i}]`, env, problems));
  if (isObject(value)) {
    const out: Obj = {};
    for (const [key, item] of Object.entries(value)) out[key] = substitute(item, path ? `${path}.${key}` : key, env, problems);
    return out;
  }
  return value;
}

/** Reads typed fields of one object, collecting problems under its path. */
class Reader {
  constructor(
    private readonly object: Obj,
    readonly path: string,
    private readonly problems: string[],
  ) {}

  private at(key: string): string {
    return `${this.path}.${key}`;
  }

  problem(key: string, message: string): void {
    this.problems.push(`${this.at(key)}: ${message}`);
  }

  onlyKeys(allowed: string[]): void {
    for (const key of Object.keys(this.object)) {
      if (!allowed.includes(key)) this.problems.push(`${this.at(key)}: is not a known field here (known: ${allowed.join(', ')})`);
    }
  }

  has(key: string): boolean {
    return this.object[key] !== undefined && this.object[key] !== null;
  }

  string(key: string): string;
  string(key: string, optional: true): string | undefined;
  string(key: string, optional?: true): string | undefined {
    const value = this.object[key];
    if (value === undefined || value === null) {
      if (!optional) this.problem(key, 'is required');
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') {
      this.problem(key, 'must be a non-empty string');
      return undefined;
    }
    return value;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const value = this.object[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.problem(key, `must be a number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const value = this.number(key, fallback, min, max);
    if (!Number.isInteger(value)) {
      this.problem(key, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.object[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.problem(key, 'must be true or false');
      return fallback;
    }
    return value;
  }

  url(key: string, fallback?: string): string | undefined {
    const value = fallback !== undefined && !this.has(key) ? fallback : this.string(key);
    if (value === undefined) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
      return value.replace(/\/+$/, '');
    } catch {
      this.problem(key, `must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
      return undefined;
    }
  }

  mapping(key: string): Reader | undefined {
    const value = this.object[key];
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) {
      this.problem(key, 'must be a mapping');
      return undefined;
    }
    return new Reader(value, this.at(key), this.problems);
  }

  raw(key: string): unknown {
    return this.object[key];
  }

  entries(): [string, unknown][] {
    return Object.entries(this.object);
  }
}

function e164(reader: Reader, key: string): string | undefined {
  const value = reader.string(key, true);
  if (value !== undefined && !/^\+[1-9]\d{7,14}$/.test(value)) reader.problem(key, 'must be an E.164 number such as +15555550100');
  return value;
}

function timeoutMs(reader: Reader): number {
  return Math.round(reader.number('timeoutSeconds', 10, 0.1, 60) * 1000);
}

function readProvider(reader: Reader): ProviderConfig | undefined {
  const type = reader.string('type');
  if (type === undefined) return undefined;
  if (!PROVIDER_TYPES.includes(type as ProviderType)) {
    reader.problem('type', `must be one of ${PROVIDER_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
    return undefined;
  }
  switch (type as ProviderType) {
    case 'twilio': {
      reader.onlyKeys(['type', 'accountSid', 'authToken', 'apiKeySid', 'apiKeySecret', 'from', 'messagingServiceSid', 'whatsappFrom', 'whatsappContentSid', 'voiceFrom', 'voice', 'baseUrl', 'timeoutSeconds']);
      const config: TwilioConfig = {
        type: 'twilio',
        accountSid: reader.string('accountSid') ?? '',
        authToken: reader.string('authToken') ?? '',
        baseUrl: reader.url('baseUrl', DEFAULT_BASE_URLS.twilio) ?? '',
        timeoutMs: timeoutMs(reader),
      };
      const optional = { apiKeySid: reader.string('apiKeySid', true), apiKeySecret: reader.string('apiKeySecret', true), messagingServiceSid: reader.string('messagingServiceSid', true), whatsappContentSid: reader.string('whatsappContentSid', true), voice: reader.string('voice', true), from: e164(reader, 'from'), whatsappFrom: e164(reader, 'whatsappFrom'), voiceFrom: e164(reader, 'voiceFrom') };
      for (const [key, value] of Object.entries(optional)) if (value !== undefined) (config as unknown as Obj)[key] = value;
      if (!config.from && !config.messagingServiceSid && !config.whatsappFrom && !config.voiceFrom) reader.problem('from', 'set from, messagingServiceSid, whatsappFrom or voiceFrom (a sender for at least one channel)');
      if ((config.apiKeySid === undefined) !== (config.apiKeySecret === undefined)) reader.problem('apiKeySid', 'apiKeySid and apiKeySecret go together');
      return config;
    }
    case 'vonage': {
      reader.onlyKeys(['type', 'apiKey', 'apiSecret', 'from', 'signatureSecret', 'signatureMethod', 'callbackToken', 'baseUrl', 'timeoutSeconds']);
      const method = reader.string('signatureMethod', true) ?? 'md5hash';
      if (!(VONAGE_SIGNATURE_METHODS as readonly string[]).includes(method)) reader.problem('signatureMethod', `must be one of ${VONAGE_SIGNATURE_METHODS.join(', ')}`);
      const config: VonageFileConfig = {
        type: 'vonage',
        apiKey: reader.string('apiKey') ?? '',
        apiSecret: reader.string('apiSecret') ?? '',
        from: reader.string('from') ?? '',
        signatureMethod: method as VonageConfig['signatureMethod'],
        baseUrl: reader.url('baseUrl', DEFAULT_BASE_URLS.vonage) ?? '',
        timeoutMs: timeoutMs(reader),
      };
      const signatureSecret = reader.string('signatureSecret', true);
      if (signatureSecret) config.signatureSecret = signatureSecret;
      const callbackToken = callbackTokenOf(reader);
      if (callbackToken) config.callbackToken = callbackToken;
      return config;
    }
    case 'msg91': {
      reader.onlyKeys(['type', 'authKey', 'templateId', 'variables', 'sender', 'callbackToken', 'baseUrl', 'timeoutSeconds']);
      const variables: Record<string, string> = {};
      const vars = reader.mapping('variables');
      if (vars) {
        for (const [key, value] of vars.entries()) {
          if (typeof value !== 'string') vars.problem(key, 'must be a string (placeholders {code}, {app}, {minutes}, {link})');
          else variables[key] = value;
        }
        for (const [key, value] of Object.entries(variables)) {
          for (const problem of templateProblems(value)) if (!problem.includes('{code}')) vars.problem(key, problem);
        }
        if (!Object.values(variables).some((v) => v.includes('{code}'))) reader.problem('variables', 'one variable must carry {code}');
      } else {
        variables.OTP = '{code}';
      }
      const config: ProviderConfig = {
        type: 'msg91',
        authKey: reader.string('authKey') ?? '',
        templateId: reader.string('templateId') ?? '',
        variables,
        baseUrl: reader.url('baseUrl', DEFAULT_BASE_URLS.msg91) ?? '',
        timeoutMs: timeoutMs(reader),
      };
      const sender = reader.string('sender', true);
      if (sender) config.sender = sender;
      const callbackToken = callbackTokenOf(reader);
      if (callbackToken) config.callbackToken = callbackToken;
      return config;
    }
    case 'smtp': {
      reader.onlyKeys(['type', 'host', 'port', 'secure', 'requireTLS', 'rejectUnauthorized', 'user', 'password', 'from', 'timeoutSeconds']);
      const secure = reader.boolean('secure', false);
      const config: SmtpConfig = {
        type: 'smtp',
        host: reader.string('host') ?? '',
        port: reader.integer('port', secure ? 465 : 587, 1, 65_535),
        secure,
        requireTLS: reader.boolean('requireTLS', false),
        rejectUnauthorized: reader.boolean('rejectUnauthorized', true),
        from: reader.string('from') ?? '',
        timeoutMs: timeoutMs(reader),
      };
      const user = reader.string('user', true);
      const pass = reader.string('password', true);
      if ((user === undefined) !== (pass === undefined)) reader.problem('user', 'user and password go together');
      else if (user !== undefined && pass !== undefined) config.auth = { user, pass };
      if (config.from && !/@[^@\s>]+>?\s*$/.test(config.from)) reader.problem('from', 'must be an address or "Name" <address>');
      return config;
    }
    case 'webhook': {
      reader.onlyKeys(['type', 'url', 'secret', 'timeoutSeconds']);
      const secret = reader.string('secret') ?? '';
      const problem = secret ? secretProblem(secret) : undefined;
      if (problem) reader.problem('secret', problem);
      return { type: 'webhook', url: reader.url('url') ?? '', secret, timeoutMs: timeoutMs(reader) };
    }
  }
}

function callbackTokenOf(reader: Reader): string | undefined {
  const token = reader.string('callbackToken', true);
  if (token !== undefined && !/^[\x21-\x7e]{24,200}$/.test(token)) reader.problem('callbackToken', 'must be 24-200 printable characters without spaces (e.g. `openssl rand -hex 24`)');
  return token;
}

/** The channels a provider can send with the fields it has (a Twilio account without a WhatsApp sender sends no WhatsApp). */
export function providerChannels(config: ProviderConfig): Channel[] {
  switch (config.type) {
    case 'twilio': {
      const out: Channel[] = [];
      if (config.from || config.messagingServiceSid) out.push('sms');
      if (config.whatsappFrom || config.messagingServiceSid) out.push('whatsapp');
      if (config.voiceFrom || config.from) out.push('voice');
      return out;
    }
    case 'vonage':
    case 'msg91':
      return ['sms'];
    case 'smtp':
      return ['email'];
    case 'webhook':
      return [...CHANNELS];
  }
}

function readTemplates(reader: Reader | undefined): CustomTemplates {
  const out: CustomTemplates = {};
  if (!reader) return out;
  reader.onlyKeys([...CHANNELS]);
  for (const channel of CHANNELS) {
    const byLocale = reader.mapping(channel);
    if (!byLocale) continue;
    for (const [locale, value] of byLocale.entries()) {
      if (!/^[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})*$/.test(locale)) {
        byLocale.problem(locale, 'must be a language tag such as en, pt-BR or hi');
        continue;
      }
      const key = normalizeLocale(locale);
      if (channel === 'email') {
        const email = byLocale.mapping(locale);
        if (!email) {
          if (value !== undefined && value !== null) continue;
          byLocale.problem(locale, 'must be a mapping with subject, text and optionally html');
          continue;
        }
        email.onlyKeys(['subject', 'text', 'html']);
        const template: EmailTemplate = { subject: email.string('subject') ?? '', text: email.string('text') ?? '' };
        const html = email.string('html', true);
        if (html !== undefined) template.html = html;
        for (const problem of templateProblems(template.text)) email.problem('text', problem);
        for (const problem of templateProblems(template.subject)) if (!problem.includes('{code}')) email.problem('subject', problem);
        if (html !== undefined) for (const problem of templateProblems(html)) email.problem('html', problem);
        (out.email ??= {})[key] = template;
      } else {
        if (typeof value !== 'string' || value.trim() === '') {
          byLocale.problem(locale, 'must be a non-empty string');
          continue;
        }
        for (const problem of templateProblems(value)) byLocale.problem(locale, problem);
        (out[channel] ??= {})[key] = value;
      }
    }
  }
  return out;
}

/**
 * SMS length checks of custom texts: rendered with the longest code (10 digits) and the app's name, an SMS
 * must fit in MAX_SMS_SEGMENTS parts, and with an Android SMS Retriever hash in 140 bytes.
 */
function checkSmsLength(templates: CustomTemplates, path: string, appName: string, appHash: string | null, problems: string[]): void {
  for (const [locale, text] of Object.entries(templates.sms ?? {})) {
    const rendered = renderMessage({ appName, code: '0123456789', minutes: 10, channel: 'sms', locale, smsAppHash: appHash, templates: { app: { sms: { [locale]: text } } } });
    const segments = rendered.segments!;
    if (segments.segments > MAX_SMS_SEGMENTS) problems.push(`${path}.sms.${locale}: renders to ${segments.segments} ${segments.encoding} segments; at most ${MAX_SMS_SEGMENTS} are sent`);
    if (appHash && segments.bytes > SMS_RETRIEVER_MAX_BYTES) {
      problems.push(`${path}.sms.${locale}: with the SMS Retriever hash it is ${segments.bytes} bytes (${segments.encoding}); Android reads at most ${SMS_RETRIEVER_MAX_BYTES}`);
    }
  }
}

function readOutbox(reader: Reader | undefined): OutboxOptions {
  if (!reader) return { ...DEFAULT_OUTBOX_OPTIONS };
  reader.onlyKeys(['pollIntervalMs', 'leaseSeconds', 'concurrency', 'maxTries', 'retryBaseSeconds', 'retryMaxSeconds']);
  const d = DEFAULT_OUTBOX_OPTIONS;
  const options: OutboxOptions = {
    pollIntervalMs: reader.integer('pollIntervalMs', d.pollIntervalMs, 20, 10_000),
    leaseMs: Math.round(reader.number('leaseSeconds', d.leaseMs / 1000, 1, 3_600) * 1000),
    concurrency: reader.integer('concurrency', d.concurrency, 1, 10_000),
    maxTries: reader.integer('maxTries', d.maxTries, 1, 20),
    retryBaseMs: Math.round(reader.number('retryBaseSeconds', d.retryBaseMs / 1000, 0.01, 3_600) * 1000),
    retryMaxMs: Math.round(reader.number('retryMaxSeconds', d.retryMaxMs / 1000, 0.01, 86_400) * 1000),
  };
  if (options.retryMaxMs < options.retryBaseMs) reader.problem('retryMaxSeconds', 'must be at least retryBaseSeconds');
  return options;
}

function readApp(name: string, reader: Reader, providers: Record<string, ProviderConfig>, globalTemplates: CustomTemplates, problems: string[]): FileApp {
  reader.onlyKeys(['settings', 'routes', 'templates', 'apiKey']);
  const settings: Record<string, unknown> = {};
  const settingsReader = reader.mapping('settings');
  for (const [key, value] of settingsReader?.entries() ?? []) {
    if (!isSettingKey(key)) {
      settingsReader!.problem(key, 'is not a setting (docs/configuration.md lists them)');
      continue;
    }
    try {
      settings[key] = validateSettingValue(key, value);
    } catch (error) {
      const detail = error instanceof OtpdError ? error.message.slice(error.message.indexOf(':') + 1).trim() : String(error);
      settingsReader!.problem(key, detail);
    }
  }
  const routes = reader.mapping('routes');
  if (routes) {
    routes.onlyKeys([...CHANNELS]);
    for (const channel of CHANNELS) {
      const list = routes.raw(channel);
      if (list === undefined) continue;
      try {
        settings[ROUTE_SETTINGS[channel]] = validateSettingValue(ROUTE_SETTINGS[channel], list);
      } catch (error) {
        routes.problem(channel, error instanceof OtpdError ? error.message.slice(error.message.indexOf(':') + 1).trim() : String(error));
      }
    }
  }
  // Every route entry must name a provider that exists and sends on that channel.
  for (const channel of CHANNELS) {
    const entries = settings[ROUTE_SETTINGS[channel]];
    if (!Array.isArray(entries)) continue;
    entries.forEach((entry: string, i) => {
      const where = `${reader.path}.routes.${channel}[${i}]`;
      const colon = entry.indexOf(':');
      const target = (colon === -1 ? channel : entry.slice(0, colon)) as Channel;
      const provider = colon === -1 ? entry : entry.slice(colon + 1);
      if ((target === 'email') !== (channel === 'email')) problems.push(`${where}: ${target} cannot stand in for ${channel} (one needs an email address, the other a phone number)`);
      if (BUILT_IN_PROVIDERS.includes(provider)) return;
      const config = providers[provider];
      if (!config) problems.push(`${where}: no provider named ${JSON.stringify(provider)} (configured: ${[...Object.keys(providers), 'log'].join(', ')})`);
      else if (!providerChannels(config).includes(target)) problems.push(`${where}: provider ${provider} does not send ${target}`);
    });
  }
  const templates = readTemplates(reader.mapping('templates'));
  const appHash = (settings.smsAppHash as string | null | undefined) ?? null;
  checkSmsLength(templates, `${reader.path}.templates`, name, appHash, problems);
  if (appHash) {
    // The file's global texts this app uses (where it has none of its own) must fit the SMS Retriever too.
    const inherited = Object.fromEntries(Object.entries(globalTemplates.sms ?? {}).filter(([locale]) => templates.sms?.[locale] === undefined));
    checkSmsLength({ sms: inherited }, `templates (used by ${reader.path}, which sets smsAppHash)`, name, appHash, problems);
  }
  const app: FileApp = { settings, templates };
  const apiKey = reader.string('apiKey', true);
  if (apiKey !== undefined) {
    if (!/^[\x21-\x7e]{16,200}$/.test(apiKey)) reader.problem('apiKey', 'must be 16 to 200 printable characters without spaces');
    else app.apiKey = apiKey;
  }
  return app;
}

/** Validates a parsed document (after `${ENV}` substitution); throws ConfigFileError with every problem. */
export function parseConfigDocument(document: unknown, path: string, env: NodeJS.ProcessEnv = process.env): FileConfig {
  const problems: string[] = [];
  if (document === null || document === undefined) document = {};
  if (!isObject(document)) throw new ConfigFileError(['the file must hold a mapping (providers, apps, templates, outbox)']);
  const root = new Reader(substitute(document, '', env, problems) as Obj, '', problems);
  // Paths below start with the top-level key, not with a dot.
  const top = (key: string): Reader | undefined => {
    const value = root.raw(key);
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) {
      problems.push(`${key}: must be a mapping`);
      return undefined;
    }
    return new Reader(value, key, problems);
  };
  for (const key of Object.keys(document)) {
    if (!['providers', 'apps', 'templates', 'outbox'].includes(key)) problems.push(`${key}: is not a known section (known: providers, apps, templates, outbox)`);
  }

  const providers: Record<string, ProviderConfig> = {};
  const providersReader = top('providers');
  for (const [name] of providersReader?.entries() ?? []) {
    if (!NAME.test(name)) {
      providersReader!.problem(name, 'provider names are 1-63 lower-case letters, digits, - or _');
      continue;
    }
    if (RESERVED_PROVIDER_NAMES.includes(name)) {
      providersReader!.problem(name, `${name} is a built-in name; choose another`);
      continue;
    }
    const reader = providersReader!.mapping(name);
    if (!reader) continue;
    const config = readProvider(reader);
    if (config) providers[name] = config;
  }

  const templates = readTemplates(top('templates'));
  checkSmsLength(templates, 'templates', 'your app name', null, problems);

  const apps: Record<string, FileApp> = {};
  const appsReader = top('apps');
  for (const [name] of appsReader?.entries() ?? []) {
    if (!NAME.test(name)) {
      appsReader!.problem(name, 'app names are 1-63 lower-case letters, digits, - or _');
      continue;
    }
    const reader = appsReader!.mapping(name) ?? new Reader({}, `apps.${name}`, problems);
    apps[name] = readApp(name, reader, providers, templates, problems);
  }

  const outbox = readOutbox(top('outbox'));
  if (problems.length > 0) throw new ConfigFileError(problems);
  return { path, outbox, providers, templates, apps };
}

/** Reads, parses (YAML, or JSON for `.json`) and validates the file. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigFileError([`cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  let document: unknown;
  try {
    document = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new ConfigFileError([`cannot parse it: ${(error as Error).message.split('\n')[0]}`]);
  }
  return parseConfigDocument(document, path, env);
}
