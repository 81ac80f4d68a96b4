import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SHIPPED_LOCALES, SHIPPED_TEMPLATES } from '../../src/delivery/template-catalog.js';
import { isGsm7, smsSegments } from '../../src/delivery/segments.js';
import { localeChain, renderMessage, templateProblems } from '../../src/delivery/templates.js';

describe('SMS segments (3GPP TS 23.038 / 23.040)', () => {
  it('counts GSM-7 text: 160 septets in one message, 153 per part beyond', () => {
    assert.deepEqual(smsSegments('hello'), { encoding: 'GSM-7', segments: 1, units: 5, bytes: 5 });
    assert.equal(smsSegments('a'.repeat(160)).segments, 1);
    assert.equal(smsSegments('a'.repeat(160)).bytes, 140, '160 septets pack into 140 bytes');
    assert.equal(smsSegments('a'.repeat(161)).segments, 2);
    assert.equal(smsSegments('a'.repeat(306)).segments, 2);
    assert.equal(smsSegments('a'.repeat(307)).segments, 3);
  });

  it('counts extension characters as two septets and never splits an escape pair', () => {
    assert.equal(smsSegments('€'.repeat(80)).units, 160);
    assert.equal(smsSegments('€'.repeat(80)).segments, 1);
    assert.equal(smsSegments('€'.repeat(81)).segments, 2);
    // 306 septets would fit two parts by division, but the 77th € cannot be split over parts 2 and 3.
    assert.equal(smsSegments('a'.repeat(152) + '€'.repeat(77)).units, 306);
    assert.equal(smsSegments('a'.repeat(152) + '€'.repeat(77)).segments, 3);
    for (const c of '^{}\\[~]|') assert.equal(smsSegments(c).units, 2, `${c} is in the extension table`);
  });

  it('switches the whole message to UCS-2 for one character outside GSM-7, and keeps surrogate pairs whole', () => {
    assert.equal(isGsm7('Ça va? é è ù ì ò ñ ü ß Ω'), true);
    assert.equal(isGsm7('ç'), false, 'only the capital Ç is in the default alphabet');
    assert.deepEqual(smsSegments('ç'.repeat(70)), { encoding: 'UCS-2', segments: 1, units: 70, bytes: 140 });
    assert.equal(smsSegments('ç'.repeat(71)).segments, 2);
    assert.equal(smsSegments('ç'.repeat(134)).segments, 2);
    assert.equal(smsSegments('ç'.repeat(135)).segments, 3);
    assert.equal(smsSegments('😀').units, 2);
    assert.equal(smsSegments('b'.repeat(66) + '😀'.repeat(34)).segments, 3, 'an emoji does not straddle two parts');
  });
});

describe('message templates', () => {
  const base = { appName: 'Acme', code: '012345', minutes: 10, channel: 'sms' as const, locale: null };

  it('ships SMS, voice and email texts for en, es, fr, de, pt, hi, ko and id, each with the code and app name', () => {
    assert.deepEqual([...SHIPPED_LOCALES].sort(), ['de', 'en', 'es', 'fr', 'hi', 'id', 'ko', 'pt']);
    for (const locale of SHIPPED_LOCALES) {
      for (const channel of ['sms', 'whatsapp', 'voice', 'email'] as const) {
        const rendered = renderMessage({ ...base, channel, locale });
        assert.equal(rendered.locale, locale);
        const digits = channel === 'voice' ? '0, 1, 2, 3, 4, 5' : '012345';
        assert.ok(rendered.text.includes(digits), `${locale} ${channel} carries the code`);
        assert.ok(rendered.text.includes('Acme'), `${locale} ${channel} names the app`);
        if (channel === 'email') assert.ok(rendered.subject.includes('Acme') && rendered.html?.includes('012345'));
      }
      assert.ok(SHIPPED_TEMPLATES[locale]!.voiceLanguage.startsWith(locale));
      // Every shipped SMS fits one message in GSM-7 or two in UCS-2, with a long app name and a 10-digit code;
      // languages written in the Latin alphabet stay in GSM-7.
      const sms = renderMessage({ ...base, appName: 'a-long-app-name', code: '0123456789', locale });
      assert.ok(sms.segments!.segments <= 2, `${locale}: ${sms.segments!.segments} segments`);
      if (!['hi', 'ko'].includes(locale)) assert.deepEqual([sms.segments!.encoding, sms.segments!.segments], ['GSM-7', 1], `${locale} SMS: ${sms.text}`);
    }
  });

  it('falls back pt-BR → pt, then the app default locale, then en', () => {
    assert.deepEqual(localeChain('pt-BR', 'es'), ['pt-br', 'pt', 'es', 'en']);
    assert.deepEqual(localeChain('zh_Hant_TW', null), ['zh-hant-tw', 'zh-hant', 'zh', 'en']);
    assert.equal(renderMessage({ ...base, locale: 'pt-BR' }).locale, 'pt');
    assert.equal(renderMessage({ ...base, locale: 'xx' }).locale, 'en');
    assert.equal(renderMessage({ ...base, locale: 'xx', defaultLocale: 'de' }).locale, 'de');
    assert.equal(renderMessage({ ...base, locale: null, defaultLocale: 'fr' }).locale, 'fr');
    assert.equal(renderMessage({ ...base, locale: 'xx' }).text, "012345 is your Acme verification code. It expires in 10 min. Don't share it.");
  });

  it('reads the code digit by digit in voice messages, with the language for text-to-speech', () => {
    const voice = renderMessage({ ...base, channel: 'voice', locale: 'de' });
    assert.equal(voice.text, 'Dein Acme-Bestätigungscode lautet 0, 1, 2, 3, 4, 5. Noch einmal: 0, 1, 2, 3, 4, 5.');
    assert.equal(voice.voiceLanguage, 'de-DE');
  });

  it('formats SMS for the Android SMS Retriever: "<#> " first, the 11-character hash on the last line', () => {
    const rendered = renderMessage({ ...base, smsAppHash: 'FA+9qCX9VSu' });
    assert.ok(rendered.text.startsWith('<#> 012345 is your Acme verification code.'));
    assert.ok(rendered.text.endsWith('\nFA+9qCX9VSu'));
    assert.ok(rendered.segments!.bytes <= 140, 'fits what the retriever reads');
    assert.equal(renderMessage({ ...base, channel: 'whatsapp', smsAppHash: 'FA+9qCX9VSu' }).text.includes('<#>'), false, 'only SMS carry it');
  });

  it('uses the app template, then the file-wide one, then the shipped one; placeholders fill once, HTML escaped', () => {
    const templates = { app: { sms: { fr: 'APP {code} {app}' } }, global: { sms: { fr: 'GLOBAL {code}', es: 'GLOBAL-ES {code} {minutes} min {link}' } } };
    assert.equal(renderMessage({ ...base, locale: 'fr', templates }).text, 'APP 012345 Acme');
    assert.equal(renderMessage({ ...base, locale: 'es', templates, link: 'https://otp.example/otp/acme/x' }).text, 'GLOBAL-ES 012345 10 min https://otp.example/otp/acme/x');
    assert.equal(renderMessage({ ...base, locale: 'de', templates }).locale, 'de');
    assert.equal(renderMessage({ ...base, appName: '{code}', locale: 'fr', templates }).text, 'APP 012345 {code}', 'a value that looks like a placeholder is not expanded');
    const email = renderMessage({ ...base, appName: '<b>Shop</b>', channel: 'email', locale: 'en', link: 'https://otp.example/otp/a?x=1&y=2' });
    assert.ok(email.html!.includes('&lt;b&gt;Shop&lt;/b&gt;') && !email.html!.includes('<b>Shop'));
    assert.ok(email.html!.includes('href="https://otp.example/otp/a?x=1&amp;y=2"'));
    assert.ok(email.text.includes('Verify in one tap: https://otp.example/otp/a?x=1&y=2'));
    assert.equal(email.subject, 'Your <b>Shop</b> verification code');
  });

  it('reports template problems: a missing {code}, unknown placeholders', () => {
    assert.deepEqual(templateProblems('{code} at {app}'), []);
    assert.deepEqual(templateProblems('no code here'), ['must contain {code}']);
    assert.deepEqual(templateProblems('{code} {name} {otp}'), ['unknown placeholders {name}, {otp} (known: {code}, {app}, {minutes}, {link})']);
  });
});
