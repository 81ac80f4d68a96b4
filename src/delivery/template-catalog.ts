/**
 * The shipped message texts, one entry per locale. Placeholders: `{code}`, `{app}`, `{minutes}` (minutes
 * left when the message is sent) and `{link}` (a one-tap link to the hosted page, when the verification has
 * one). SMS texts put the code first where the language allows, so a lock screen preview shows it, and keep
 * to the GSM 03.38 alphabet where the language can (es and pt avoid á, ó, ç, ã), so they cost one segment;
 * voice texts say the code twice, and `{code}` there is read out digit by digit.
 *
 * A config file may replace any of these per channel and locale (docs/delivery.md); otpd falls back from
 * `pt-BR` to `pt` to the app's default locale to `en`.
 */
export interface LocaleTexts {
  sms: string;
  voice: string;
  emailSubject: string;
  emailIntro: string;
  emailExpiry: string;
  emailIgnore: string;
  emailLink: string;
  /** BCP 47 tag handed to text-to-speech (Twilio `<Say language>`). */
  voiceLanguage: string;
}

export const SHIPPED_TEMPLATES: Readonly<Record<string, LocaleTexts>> = {
  en: {
    sms: "{code} is your {app} verification code. It expires in {minutes} min. Don't share it.",
    voice: 'Your {app} verification code is {code}. Again: {code}.',
    emailSubject: 'Your {app} verification code',
    emailIntro: 'Your {app} verification code is:',
    emailExpiry: 'It expires in {minutes} minutes.',
    emailIgnore: "If you didn't ask for this code, you can ignore this email.",
    emailLink: 'Verify in one tap',
    voiceLanguage: 'en-US',
  },
  es: {
    sms: '{code} es tu clave de acceso a {app}. Caduca en {minutes} min. No la compartas.',
    voice: 'Tu código de verificación de {app} es {code}. Repito: {code}.',
    emailSubject: 'Tu código de verificación de {app}',
    emailIntro: 'Tu código de verificación de {app} es:',
    emailExpiry: 'Caduca en {minutes} minutos.',
    emailIgnore: 'Si no pediste este código, puedes ignorar este correo.',
    emailLink: 'Verificar con un toque',
    voiceLanguage: 'es-ES',
  },
  fr: {
    sms: '{code} est votre code de vérification {app}. Il expire dans {minutes} min. Ne le partagez pas.',
    voice: 'Votre code de vérification {app} est {code}. Je répète : {code}.',
    emailSubject: 'Votre code de vérification {app}',
    emailIntro: 'Votre code de vérification {app} est :',
    emailExpiry: 'Il expire dans {minutes} minutes.',
    emailIgnore: "Si vous n'avez pas demandé ce code, ignorez cet e-mail.",
    emailLink: 'Vérifier en un clic',
    voiceLanguage: 'fr-FR',
  },
  de: {
    sms: '{code} ist dein {app}-Bestätigungscode. Er läuft in {minutes} Min. ab. Gib ihn nicht weiter.',
    voice: 'Dein {app}-Bestätigungscode lautet {code}. Noch einmal: {code}.',
    emailSubject: 'Dein {app}-Bestätigungscode',
    emailIntro: 'Dein {app}-Bestätigungscode lautet:',
    emailExpiry: 'Er läuft in {minutes} Minuten ab.',
    emailIgnore: 'Wenn du diesen Code nicht angefordert hast, ignoriere diese E-Mail.',
    emailLink: 'Mit einem Tippen bestätigen',
    voiceLanguage: 'de-DE',
  },
  pt: {
    sms: '{code} é a sua senha de acesso ao {app}. Expira em {minutes} min. Nunca a compartilhe.',
    voice: 'O seu código de verificação do {app} é {code}. Repetindo: {code}.',
    emailSubject: 'O seu código de verificação do {app}',
    emailIntro: 'O seu código de verificação do {app} é:',
    emailExpiry: 'Expira em {minutes} minutos.',
    emailIgnore: 'Se você não pediu este código, ignore este e-mail.',
    emailLink: 'Verificar com um toque',
    voiceLanguage: 'pt-BR',
  },
  hi: {
    sms: '{code} आपका {app} सत्यापन कोड है। यह {minutes} मिनट में समाप्त होगा। इसे किसी से साझा न करें।',
    voice: 'आपका {app} सत्यापन कोड है {code}। फिर से: {code}।',
    emailSubject: 'आपका {app} सत्यापन कोड',
    emailIntro: 'आपका {app} सत्यापन कोड है:',
    emailExpiry: 'यह {minutes} मिनट में समाप्त होगा।',
    emailIgnore: 'अगर आपने यह कोड नहीं माँगा था, तो इस ईमेल को अनदेखा करें।',
    emailLink: 'एक टैप में सत्यापित करें',
    voiceLanguage: 'hi-IN',
  },
  ko: {
    sms: '[{app}] 인증번호: {code} ({minutes}분 후 만료). 타인에게 알려주지 마세요.',
    voice: '{app} 인증번호는 {code} 입니다. 다시 한 번, {code}.',
    emailSubject: '{app} 인증번호',
    emailIntro: '{app} 인증번호:',
    emailExpiry: '{minutes}분 후 만료됩니다.',
    emailIgnore: '인증번호를 요청하지 않으셨다면 이 이메일을 무시하세요.',
    emailLink: '한 번에 인증하기',
    voiceLanguage: 'ko-KR',
  },
  id: {
    sms: '{code} adalah kode verifikasi {app} Anda. Berlaku {minutes} menit. Jangan bagikan kode ini.',
    voice: 'Kode verifikasi {app} Anda adalah {code}. Sekali lagi: {code}.',
    emailSubject: 'Kode verifikasi {app} Anda',
    emailIntro: 'Kode verifikasi {app} Anda adalah:',
    emailExpiry: 'Berlaku {minutes} menit.',
    emailIgnore: 'Jika Anda tidak meminta kode ini, abaikan email ini.',
    emailLink: 'Verifikasi dengan satu ketukan',
    voiceLanguage: 'id-ID',
  },
};

export const SHIPPED_LOCALES = Object.keys(SHIPPED_TEMPLATES);
export const FALLBACK_LOCALE = 'en';
