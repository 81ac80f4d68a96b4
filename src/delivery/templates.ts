import type { Channel } from '../core/destination.js';
import { smsSegments, type SmsSegments } from './segments.js';
import { FALLBACK_LOCALE, SHIPPED_TEMPLATES, type LocaleTexts } from './template-catalog.js';

/** An email template from a config file; `html` is derived from `text` when left out. */
export interface EmailTemplate {
  subject: string;
  text: string;
  html?: string;
}

/** Message texts a config file sets, per channel and locale (lower-case tags such as `pt-br`). */
export interface CustomTemplates {
  sms?: Record<string, string>;
  whatsapp?: Record<string, string>;
  voice?: Record<string, string>;
  email?: Record<string, EmailTemplate>;
}

export const PLACEHOLDERS = ['code', 'app', 'minutes', 'link'] as const;
const PLACEHOLDER = /\{(code|app|minutes|link)\}/g;

export interface TemplateInput {
  appName: string;
  code: string;
  minutes: number;
  channel: Channel;
  locale: string | null;
  /** The app's `defaultLocale`, tried after the requested locale and before `en`. */
  defaultLocale?: string | null;
  /** One-tap link to the hosted page, for `{link}`. */
  link?: string | null;
  /** Android SMS Retriever app hash (11 characters): the SMS becomes `<#> text\nHASH`. */
  smsAppHash?: string | null;
  /** The app's own templates first, then the file's global ones, then the shipped ones. */
  templates?: { app?: CustomTemplates | undefined; global?: CustomTemplates | undefined };
}

export interface RenderedMessage {
  text: string;
  subject: string;
  /** Email only. */
  html: string | null;
  /** The locale whose text was used. */
  locale: string;
  voiceLanguage: string;
  /** SMS only: encoding and parts (`src/delivery/segments.ts`). */
  segments: SmsSegments | null;
}

/** `pt_BR` → `pt-br`. */
export function normalizeLocale(locale: string): string {
  return locale.trim().replace(/_/g, '-').toLowerCase();
}

/**
 * The locales tried, in order: the requested tag and each shorter prefix of it (`pt-br`, `pt`), then the
 * same for the app's default, then `en`.
 */
export function localeChain(locale: string | null | undefined, defaultLocale?: string | null): string[] {
  let byDefault = chains.get(locale ?? '');
  if (!byDefault) {
    // Callers choose locales, so the memo is bounded; a real server sees a handful.
    if (chains.size >= MAX_CHAINS) chains.clear();
    byDefault = new Map();
    chains.set(locale ?? '', byDefault);
  }
  let chain = byDefault.get(defaultLocale ?? '');
  if (!chain) {
    chain = buildLocaleChain(locale, defaultLocale);
    if (byDefault.size >= MAX_CHAINS) byDefault.clear();
    byDefault.set(defaultLocale ?? '', chain);
  }
  return chain;
}

/** `localeChain` by locale, then default locale: every message of a locale walks the same chain (read-only). */
const chains = new Map<string, Map<string, string[]>>();
const MAX_CHAINS = 256;

function buildLocaleChain(locale: string | null | undefined, defaultLocale?: string | null): string[] {
  const out: string[] = [];
  for (const tag of [locale, defaultLocale, FALLBACK_LOCALE]) {
    if (!tag) continue;
    const parts = normalizeLocale(tag).split('-').filter(Boolean);
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join('-');
      if (!out.includes(candidate)) out.push(candidate);
    }
  }
  return out;
}

/** Replaces each placeholder once (values are never expanded again), escaping the values with `escape`. */
export function fillPlaceholders(template: string, values: Record<(typeof PLACEHOLDERS)[number], string>, escape: (s: string) => string = (s) => s): string {
  return template.replace(PLACEHOLDER, (_match, name: (typeof PLACEHOLDERS)[number]) => escape(values[name]));
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Digits read one by one: "1, 2, 3, 4, 5, 6" makes text-to-speech pause between them. */
function spoken(code: string): string {
  return code.split('').join(', ');
}

function textFor(input: TemplateInput, kind: 'sms' | 'whatsapp' | 'voice', chain: string[]): { template: string; locale: string } {
  const { app, global } = input.templates ?? {};
  for (const locale of chain) {
    const candidates =
      kind === 'whatsapp'
        ? [app?.whatsapp?.[locale], global?.whatsapp?.[locale], app?.sms?.[locale], global?.sms?.[locale], SHIPPED_TEMPLATES[locale]?.sms]
        : [app?.[kind]?.[locale], global?.[kind]?.[locale], SHIPPED_TEMPLATES[locale]?.[kind]];
    const found = candidates.find((c) => c !== undefined);
    if (found !== undefined) return { template: found, locale };
  }
  return { template: SHIPPED_TEMPLATES[FALLBACK_LOCALE]![kind === 'whatsapp' ? 'sms' : kind], locale: FALLBACK_LOCALE };
}

function shippedFor(chain: string[]): { texts: LocaleTexts; locale: string } {
  for (const locale of chain) {
    const texts = SHIPPED_TEMPLATES[locale];
    if (texts) return { texts, locale };
  }
  return { texts: SHIPPED_TEMPLATES[FALLBACK_LOCALE]!, locale: FALLBACK_LOCALE };
}

function emailFor(input: TemplateInput, chain: string[]): { email: EmailTemplate; locale: string; shipped: boolean } {
  const { app, global } = input.templates ?? {};
  for (const locale of chain) {
    const custom = app?.email?.[locale] ?? global?.email?.[locale];
    if (custom) return { email: custom, locale, shipped: false };
    const texts = SHIPPED_TEMPLATES[locale];
    if (texts) return { email: shippedEmail(texts, input.link), locale, shipped: true };
  }
  return { email: shippedEmail(SHIPPED_TEMPLATES[FALLBACK_LOCALE]!, input.link), locale: FALLBACK_LOCALE, shipped: true };
}

function shippedEmail(texts: LocaleTexts, link: string | null | undefined): EmailTemplate {
  const lines = [texts.emailIntro, '', '{code}', '', texts.emailExpiry];
  if (link) lines.push('', `${texts.emailLink}: {link}`);
  lines.push('', texts.emailIgnore);
  const button = link
    ? `<p style="margin:24px 0"><a href="{link}" style="background:#1a56db;color:#fff;padding:12px 20px;border-radius:6px;text-decoration:none">${escapeHtml(texts.emailLink)}</a></p>`
    : '';
  const html =
    '<!doctype html><html><body style="font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111;margin:0;padding:24px">' +
    `<p>${escapeHtml(texts.emailIntro)}</p>` +
    '<p style="font-size:32px;font-weight:700;letter-spacing:6px;font-family:ui-monospace,Menlo,Consolas,monospace;margin:16px 0">{code}</p>' +
    `<p>${escapeHtml(texts.emailExpiry)}</p>${button}` +
    `<p style="color:#666;font-size:13px">${escapeHtml(texts.emailIgnore)}</p></body></html>`;
  return { subject: texts.emailSubject, text: lines.join('\n'), html };
}

/** A custom email without `html`: its text, escaped, line breaks kept. */
function htmlFromText(text: string): string {
  return `<!doctype html><html><body style="font-family:sans-serif;white-space:pre-wrap">${text}</body></html>`;
}

/**
 * Renders the message for one channel and locale. Values are inserted once (a code or app name that looks
 * like a placeholder is not expanded again) and HTML-escaped in the email's HTML body.
 */
export function renderMessage(input: TemplateInput): RenderedMessage {
  const chain = localeChain(input.locale, input.defaultLocale);
  const values = {
    code: input.channel === 'voice' ? spoken(input.code) : input.code,
    app: input.appName,
    minutes: String(input.minutes),
    link: input.link ?? '',
  };
  const shipped = shippedFor(chain).texts;
  const voiceLanguage = shipped.voiceLanguage;

  if (input.channel === 'email') {
    const { email, locale } = emailFor(input, chain);
    const text = fillPlaceholders(email.text, values);
    const html = email.html !== undefined ? fillPlaceholders(email.html, values, escapeHtml) : htmlFromText(fillPlaceholders(escapeHtml(email.text), values, escapeHtml));
    return { text, subject: fillPlaceholders(email.subject, values), html, locale, voiceLanguage, segments: null };
  }

  const { template, locale } = textFor(input, input.channel, chain);
  let text = fillPlaceholders(template, values);
  const subject = fillPlaceholders(shipped.emailSubject, values);
  if (input.channel === 'sms') {
    if (input.smsAppHash) text = `<#> ${text}\n${input.smsAppHash}`;
    return { text, subject, html: null, locale, voiceLanguage, segments: smsSegments(text) };
  }
  return { text, subject, html: null, locale, voiceLanguage, segments: null };
}

/** Problems with a custom template text: missing `{code}`, unknown placeholders. */
export function templateProblems(text: string): string[] {
  const problems: string[] = [];
  if (!text.includes('{code}')) problems.push('must contain {code}');
  const unknown = [...text.matchAll(/\{([^{}\s]*)\}/g)].map((m) => m[1]!).filter((name) => !(PLACEHOLDERS as readonly string[]).includes(name));
  if (unknown.length > 0) problems.push(`unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `{${n}}`).join(', ')} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`);
  return problems;
}
