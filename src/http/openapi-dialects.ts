/**
 * OpenAPI documentation of the dialect routes (seeds 000–004) and the hosted page, applied by the transform in
 * src/http/openapi.ts. Documentation only: the routes themselves carry no body, querystring or response
 * schema, because each dialect parses its own body to answer its own documented error envelope, and a fastify
 * schema would validate (and, with fastify's default Ajv options, coerce or strip) bodies and change how answers
 * are serialized. The transform output is read by @fastify/swagger alone, never by the router.
 *
 * Examples are taken from the seeds (/work/shared/seeds) and docs/dialects.md, which lists every answer.
 */

type Example = { summary: string; value: unknown };
export interface DialectResponse {
  description: string;
  /** Media type → named examples. */
  examples: Record<string, Example>;
  mediaType?: string;
  retryAfter?: boolean;
}
export interface DialectDoc {
  summary: string;
  description: string;
  /** Documented request body (permissive: nothing here is enforced). */
  body?: Record<string, unknown>;
  querystring?: Record<string, unknown>;
  consumes?: string[];
  responses: Record<string, DialectResponse>;
}

const DOCS = 'docs/dialects.md';
const JSON_MEDIA = 'application/json';

/** A permissive object schema: documents the fields, requires none, allows any other. */
function fields(properties: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return { type: 'object', additionalProperties: true, properties };
}
const str = (description: string): Record<string, unknown> => ({ type: 'string', description });
const int = (description: string): Record<string, unknown> => ({ type: 'integer', description });

// ---------- seed 001 / 003 ----------

const timeWindowError = (status: number, errorCode: number, message: string, details: string, path = '/v1/otp') => ({
  timestamp: 1561571053912,
  status,
  errorCode,
  'error-message': message,
  traceID: 'req_01j0000000000000000000000',
  'error-details': details,
  path,
});
const userOtpError = (message: string) => ({ success: false, message });

const SEED_001_FIELDS = {
  operationType: str('seed 001: `GENERATE` or `VALIDATE` (also `operation_type`)'),
  generatedOtp: { description: 'seed 001, VALIDATE: the code (string of digits or number)' },
  channel: str('seed 001: `Digital`, `Partner`, `App` or `Brand`'),
  startTime: str('seed 001: `YYYY-mm-dd HH:mm:ss` in the app’s timeZone (also `start_time`)'),
  duration: int('seed 001: window length in seconds'),
  digit: int('seed 001: code length, 4 to 10'),
  mobile: { description: 'seed 001: 10 digits, string or number (also `mobile_no`)' },
};
const SEED_003_FIELDS = {
  userId: str('seed 003: the user (also `UserId`)'),
  email: str('seed 003: the email address to send the code to'),
  phoneNumber: str('seed 003: the E.164 number to send the code to'),
};

const RESPONSES_003_GENERATE: Record<string, DialectResponse> = {
  '200': { description: 'seed 003: code sent', examples: { generated: { summary: 'OTP generated', value: { success: true, data: 'OTP Generated' } } } },
  '400': {
    description: 'seed 003: bad request, or a send limit refused it (`Retry-After` then)',
    retryAfter: true,
    examples: {
      missingUserId: { summary: 'no userId', value: userOtpError('userId: is required') },
      noAddress: { summary: 'neither email nor phoneNumber', value: userOtpError('email: give email or phoneNumber') },
      contentType: { summary: 'not JSON', value: userOtpError('Content-Type: must be application/json') },
    },
  },
  '401': { description: 'seed 003: API key unknown or revoked, or keyless access off', examples: { key: { summary: 'bad key', value: userOtpError('Authorization: the API key is unknown or revoked') } } },
  '500': { description: 'seed 003: internal error', examples: { internal: { summary: 'internal error', value: userOtpError('An error occured processing the request') } } },
};

const RESPONSES_003_VERIFY: Record<string, DialectResponse> = {
  '200': { description: 'seed 003: code verified', examples: { verified: { summary: 'OTP verified', value: { success: true, data: 'OTP Verified' } } } },
  '400': {
    description: 'seed 003: bad request, wrong/expired code, or too many wrong attempts',
    examples: {
      incorrect: { summary: 'wrong or expired code', value: userOtpError('otp: is incorrect or has expired') },
      locked: { summary: 'too many wrong codes', value: userOtpError('otp: too many wrong attempts; request a new OTP') },
      missingOtp: { summary: 'no otp', value: userOtpError('otp: is required') },
    },
  },
  '401': RESPONSES_003_GENERATE['401']!,
  '500': RESPONSES_003_GENERATE['500']!,
};

const RESPONSES_001_AND_003: Record<string, DialectResponse> = {
  '200': {
    description: 'seed 001: code generated or verified; seed 003: code sent',
    examples: {
      generated001: { summary: 'seed 001 GENERATE', value: { status: 200, message: 'OTP is successfully generated', otp: '145236' } },
      verified001: { summary: 'seed 001 VALIDATE', value: { status: 200, message: 'OTP is successfully verified' } },
      generated003: { summary: 'seed 003 generate', value: { success: true, data: 'OTP Generated' } },
    },
  },
  '400': {
    description: 'seed 001: body not valid JSON / not an object (errorCode 2, 3); seed 003: any client error',
    examples: {
      json001: { summary: 'seed 001, invalid JSON', value: timeWindowError(400, 2, 'BAD_REQUEST', 'body: is not valid JSON') },
      missing003: { summary: 'seed 003, no userId', value: userOtpError('userId: is required') },
    },
  },
  '401': {
    description: 'API key unknown or revoked, or keyless access off (seed 001 errorCode 6, 7)',
    examples: { key001: { summary: 'seed 001', value: timeWindowError(401, 6, 'UNAUTHORIZED', 'Authorization: the API key is unknown or revoked') } },
  },
  '403': { description: 'seed 001: the API key’s hourly quota is used up (errorCode 8)', examples: { quota: { summary: 'quota', value: timeWindowError(403, 8, 'FORBIDDEN', 'the API key’s hourly quota is used up') } } },
  '413': { description: 'seed 001: body over 64 KiB (errorCode 5)', examples: { size: { summary: 'too large', value: timeWindowError(413, 5, 'PAYLOAD_TOO_LARGE', 'body: must be at most 64 KiB') } } },
  '415': { description: 'seed 001: Content-Type is not application/json (errorCode 4)', examples: { type: { summary: 'content type', value: timeWindowError(415, 4, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type: must be application/json') } } },
  '422': {
    description: 'seed 001: a DR rule broken, wrong code, window not open or ended, replay (errorCodes 1001–8004, 9001, 9003)',
    examples: {
      channel: { summary: 'DR-0002 channel', value: timeWindowError(422, 2002, 'UNPROCESSABLE_ENTITY', 'DR-0002: channel must be one of Digital, Partner, App, Brand') },
      ended: { summary: 'window ended', value: timeWindowError(422, 8003, 'UNPROCESSABLE_ENTITY', 'the OTP window has ended') },
    },
  },
  '429': {
    description: 'seed 001: too many guesses (8005) or the SMS send refused by the app’s limits (9002); `Retry-After`',
    retryAfter: true,
    examples: { guesses: { summary: 'too many guesses', value: timeWindowError(429, 8005, 'TOO_MANY_REQUESTS', 'too many attempts for this mobile and startTime') } },
  },
  '500': {
    description: 'internal error (seed 001 errorCode 1; seed 003 its own wording)',
    examples: {
      internal001: { summary: 'seed 001', value: timeWindowError(500, 1, 'Internal Server Error', 'Internal Server Error') },
      internal003: { summary: 'seed 003', value: userOtpError('An error occured processing the request') },
    },
  },
  '503': { description: 'seed 001: the store is unavailable (errorCode 9)', examples: { store: { summary: 'store down', value: timeWindowError(503, 9, 'SERVICE_UNAVAILABLE', 'the store is unavailable') } } },
};

const DOC_001_003: DialectDoc = {
  summary: 'Seed 001 GENERATE/VALIDATE a time-window code, or seed 003 send a code to a user',
  description: `Keyless. Claimed by two seeds; the body decides: any seed-001 field selects seed 001, else \`userId\`/\`email\`/\`phoneNumber\` select seed 003; a body that says neither is answered by the seed whose spelling of the path was used (\`/v1/otp\` 001, \`/v1/otp/\` 003). See ${DOCS} (“POST /v1/otp: seed 001 or seed 003”).`,
  body: fields({ ...SEED_001_FIELDS, ...SEED_003_FIELDS }),
  consumes: [JSON_MEDIA],
  responses: RESPONSES_001_AND_003,
};
const DOC_003_GENERATE: DialectDoc = {
  summary: 'Seed 003: send a code to a user’s email or phone',
  description: `Keyless. Sends a code as a real verification of the app, remembered per userId. See ${DOCS} (“Seed 003”).`,
  body: fields(SEED_003_FIELDS),
  consumes: [JSON_MEDIA],
  responses: RESPONSES_003_GENERATE,
};
const DOC_003_VERIFY: DialectDoc = {
  summary: 'Seed 003: verify the code sent to a user',
  description: `Keyless; added by otpd (the seed documents only the generate). An unknown userId answers exactly as a wrong code. See ${DOCS} (“Seed 003”).`,
  body: fields({ userId: str('the user the code was sent for'), otp: str('the code, 4 to 10 digits') }),
  consumes: [JSON_MEDIA],
  responses: RESPONSES_003_VERIFY,
};

// ---------- seed 000 ----------

const partnerError = (code: number, description: string) => ({ ErrorCode: code, ErrorDescription: description });
const partnerData = {
  ErrorCode: 0,
  ErrorDescription: '',
  Data: { Timestamp: 1664343761, Signature: 'gPEHq3j2oB1uC0bK8s9Y2ZkqUu0+2rJ6m9m0yq3y6xE=', PartnerID: 'PARTNER1', GetPlusID: 'GETPLUSID' },
};
const PARTNER_SIGNED_FIELDS = {
  PartnerID: str('the partner id of the app'),
  GetPlusID: str('the user (a subject of the app)'),
  Signature: str('Base64(HMAC-SHA256(EncryptKey, PartnerID:GetPlusID:Timestamp))'),
  Timestamp: str('Unix seconds, within ±300 s of the server'),
};
const partnerErrors = (extra: Record<string, DialectResponse> = {}): Record<string, DialectResponse> => ({
  '400': { description: 'ErrorCode 40001 (field), 40002 (invalid JSON)', examples: { field: { summary: 'missing field', value: partnerError(40001, 'GetPlusID: is required') }, json: { summary: 'invalid JSON', value: partnerError(40002, 'body: is not valid JSON') } } },
  '401': {
    description: 'ErrorCode 40100 (token), 40101 (signature), 40102 (stale Timestamp), 40103 (replay)',
    examples: { signature: { summary: 'bad signature', value: partnerError(40101, 'Invalid Signature') }, token: { summary: 'bad token', value: partnerError(40100, 'the partner token is missing, invalid or expired') } },
  },
  '403': { description: 'ErrorCode 40300: the token was issued to another PartnerID', examples: { partner: { summary: 'other partner', value: partnerError(40300, 'the token was issued to another PartnerID') } } },
  '404': { description: 'ErrorCode 40401: GetPlusID is not registered', examples: { subject: { summary: 'unknown GetPlusID', value: partnerError(40401, 'GetPlusID: is not registered') } } },
  '413': { description: 'ErrorCode 41300: body over 64 KiB', examples: { size: { summary: 'too large', value: partnerError(41300, 'body: must be at most 64 KiB') } } },
  '415': { description: 'ErrorCode 41500: body not application/json', examples: { type: { summary: 'content type', value: partnerError(41500, 'Content-Type: must be application/json') } } },
  ...extra,
  '500': { description: 'ErrorCode 50000: internal error', examples: { internal: { summary: 'internal', value: partnerError(50000, 'internal error') } } },
  '503': { description: 'ErrorCode 50300: store unavailable (`Retry-After`)', retryAfter: true, examples: { store: { summary: 'store down', value: partnerError(50300, 'the store is unavailable') } } },
});
const PARTNER_REQUEST_RESPONSES: Record<string, DialectResponse> = {
  '200': { description: 'ErrorCode 0: code sent; a fresh Timestamp and Signature in Data', examples: { sent: { summary: 'sent', value: partnerData } } },
  ...partnerErrors({
    '422': { description: 'ErrorCode 42201 (Maximum OTP reach), 42202, 42206, 42207', examples: { max: { summary: 'limit', value: partnerError(42201, 'Maximum OTP reach') } } },
    '429': { description: 'ErrorCode 42901: the app’s send limits refused the SMS (`Retry-After`)', retryAfter: true, examples: { cooldown: { summary: 'cooldown', value: partnerError(42901, 'an OTP was sent to this phone moments ago') } } },
  }),
};

const DOC_000_TOKEN: DialectDoc = {
  summary: 'Seed 000: partner token (OAuth 2.0 client credentials)',
  description: `Client credentials grant (RFC 6749 §4.4) with PartnerID/EncryptKey as client_id/client_secret, in the body or by HTTP Basic. Errors follow RFC 6749 §5.2. See ${DOCS} (“Seed 000”).`,
  body: fields({ grant_type: str('`client_credentials`'), client_id: str('the PartnerID (also `PartnerID`)'), client_secret: str('the EncryptKey (also `EncryptKey`)') }),
  consumes: ['application/x-www-form-urlencoded', JSON_MEDIA],
  responses: {
    '200': { description: 'a partner token valid 15 minutes', examples: { token: { summary: 'token', value: { access_token: 'pt1.eyJwIjoiUEFSVE5FUjEifQ.c2ln', token_type: 'Bearer', expires_in: 900 } } } },
    '400': { description: 'invalid_request or unsupported_grant_type', examples: { grant: { summary: 'grant', value: { error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' } } } },
    '401': { description: 'invalid_client: unknown PartnerID or wrong EncryptKey (`WWW-Authenticate: Basic`)', examples: { client: { summary: 'bad credentials', value: { error: 'invalid_client', error_description: 'client authentication failed' } } } },
  },
};
const DOC_000_REQUEST = (where: 'body' | 'query'): DialectDoc => ({
  summary: `Seed 000: request an OTP for a GetPlusID (fields in the ${where})`,
  description: `\`Authorization: Bearer\` partner token. Sends a code by SMS to the subject’s registered phone. Errors are \`{"ErrorCode","ErrorDescription"}\` with HTTP status ErrorCode / 100. See ${DOCS} (“Seed 000”).`,
  ...(where === 'body' ? { body: fields(PARTNER_SIGNED_FIELDS), consumes: [JSON_MEDIA] } : { querystring: fields(PARTNER_SIGNED_FIELDS) }),
  // A GET has no body, so no body-size or content-type errors.
  responses: where === 'body' ? PARTNER_REQUEST_RESPONSES : Object.fromEntries(Object.entries(PARTNER_REQUEST_RESPONSES).filter(([status]) => status !== '413' && status !== '415')),
});
const DOC_000_VERIFY: DialectDoc = {
  summary: 'Seed 000: verify the OTP of a GetPlusID',
  description: `Added by otpd (decisions 17). \`Authorization: Bearer\` partner token; checks the code of the GetPlusID’s latest OTP request. See ${DOCS} (“Seed 000”).`,
  body: fields({ ...PARTNER_SIGNED_FIELDS, OTP: str('the code') }),
  consumes: [JSON_MEDIA],
  responses: {
    '200': { description: 'ErrorCode 0: verified; a fresh Timestamp and Signature in Data', examples: { verified: { summary: 'verified', value: partnerData } } },
    ...partnerErrors({
      '422': { description: 'ErrorCode 42203 (incorrect), 42204 (no pending OTP), 42205 (too many wrong)', examples: { incorrect: { summary: 'wrong code', value: partnerError(42203, 'OTP is incorrect') } } },
    }),
  },
};
const DOC_000_HELPER: DialectDoc = {
  summary: 'Seed 000: compute a partner signature (development helper)',
  description: `No token needed; answers only while the app’s \`signatureHelper\` setting is on (off for apps created in production). See ${DOCS} (“Seed 000”).`,
  querystring: fields({ PartnerID: str('the partner id'), EncryptKey: str('the partner’s EncryptKey'), GetPlusID: str('the user') }),
  responses: {
    '200': { description: 'ErrorCode 0: a Timestamp and Signature for now', examples: { signature: { summary: 'signature', value: partnerData } } },
    '400': { description: 'ErrorCode 40001: a field is missing', examples: { field: { summary: 'missing field', value: partnerError(40001, 'EncryptKey: is required') } } },
    '401': { description: 'ErrorCode 40104: invalid PartnerID or EncryptKey', examples: { credentials: { summary: 'bad credentials', value: partnerError(40104, 'Invalid PartnerID or EncryptKey') } } },
    '403': { description: 'ErrorCode 40301: helper switched off', examples: { off: { summary: 'off', value: partnerError(40301, 'the signature helper is switched off for this app') } } },
  },
};

// ---------- seed 002 ----------

const gatewayData = {
  namespace: 'myapp',
  id: 'order-12345',
  to: '+14084446640',
  channel_description: '',
  address_description: '',
  extra: {},
  provider: 'sms',
  provider_id: '',
  delivery_status: 'PENDING',
  failure_reason: '',
  otp: '482913',
  max_attempts: 5,
  attempts: 0,
  closed: false,
  ttl: 300,
};
const gatewayError = (message: string, data?: unknown) => ({ status: 'error', message, ...(data === undefined ? {} : { data }) });
const GATEWAY_AUTH: Record<string, DialectResponse> = {
  '401': { description: 'API key missing or invalid', examples: { auth: { summary: 'bad key', value: gatewayError('invalid API credentials') } } },
  '403': { description: 'the key’s hourly quota is used up (`Retry-After`)', retryAfter: true, examples: { quota: { summary: 'quota', value: gatewayError('API Key usage limit reached! Allowed rate is 100 API calls per hour') } } },
};
const GATEWAY_FORMS = ['multipart/form-data', 'application/x-www-form-urlencoded', JSON_MEDIA];

const DOC_002_HEALTH: DialectDoc = {
  summary: 'Seed 002: health check (otpgateway)',
  description: `Unauthenticated. See ${DOCS} (“Seed 002”).`,
  responses: {
    '200': { description: 'healthy', examples: { ok: { summary: 'OK', value: { status: 'success', data: 'OK' } } } },
    '503': { description: 'the store is unreachable', examples: { down: { summary: 'store down', value: gatewayError('unable to reach store') } } },
  },
};
const DOC_002_PROVIDERS: DialectDoc = {
  summary: 'Seed 002: list the app’s channels',
  description: `API key (\`X-API-Key\`, Basic \`namespace:key\` or Bearer). See ${DOCS} (“Seed 002”).`,
  responses: { '200': { description: 'the app’s channels', examples: { channels: { summary: 'channels', value: { status: 'success', data: ['sms', 'email'] } } } }, ...GATEWAY_AUTH },
};
const DOC_002_PUT: DialectDoc = {
  summary: 'Seed 002: create and send a code under the client’s id',
  description: `API key. Multipart form-data (as in the collection), urlencoded or JSON; unknown fields ignored. A PUT on a pending id for the same destination is a resend. See ${DOCS} (“Seed 002”).`,
  body: fields({
    to: str('phone number (E.164, `+` optional) or email address'),
    channel_description: str('free text shown on the hosted page'),
    address_description: str('free text shown on the hosted page'),
    provider: str('channel or provider name (`sms`, `email`, `smtp`, …)'),
    ttl: { description: 'seconds, 30 to 86400' },
    max_attempts: { description: '1 to 20' },
    extra: { description: 'JSON (a string in forms), at most 4 KiB' },
    otp: str('caller-chosen code; only where the app’s callerCodes setting is on'),
  }),
  consumes: GATEWAY_FORMS,
  responses: {
    '200': { description: 'accepted and sent; `otp` is the code while the app echoes it, `url` the hosted page', examples: { sent: { summary: 'sent', value: { status: 'success', data: { ...gatewayData, url: 'https://otp.example.com/otp/myapp/order-12345' } } } } },
    '400': { description: 'a bad field, named', examples: { to: { summary: 'bad to', value: gatewayError('invalid `to` address: must be a phone number or an email address') }, id: { summary: 'short id', value: gatewayError('ID should be min 6 chars') } } },
    ...GATEWAY_AUTH,
    '429': {
      description: 'attempts used up before expiry, resend cooldown or send limit (`Retry-After`)',
      retryAfter: true,
      examples: { attempts: { summary: 'attempts exceeded', value: gatewayError('OTP attempts exceeded. Retry after 240 seconds.', { ttl_seconds: 240, attempts: 5, max_attempts: 5 }) } },
    },
  },
};
const DOC_002_CHECK: DialectDoc = {
  summary: 'Seed 002: check a code',
  description: `API key. \`action=check\` and \`otp\`; \`skip_delete\` keeps the id for the status route. See ${DOCS} (“Seed 002”).`,
  body: fields({ action: str('`check`'), otp: str('the code'), skip_delete: str('Go boolean: keep the id after a successful check') }),
  consumes: GATEWAY_FORMS,
  responses: {
    '200': { description: 'right code', examples: { verified: { summary: 'verified', value: { status: 'success', data: { ...gatewayData, otp: '', attempts: 1, closed: true } } } } },
    '400': {
      description: 'wrong code (with data), or an id never used, consumed or of another app',
      examples: { wrong: { summary: 'wrong code', value: gatewayError('Incorrect OTP', { ...gatewayData, otp: '', attempts: 1 }) }, missing: { summary: 'unknown id', value: gatewayError('the OTP does not exist') } },
    },
    ...GATEWAY_AUTH,
    '429': { description: 'the id takes no more codes (attempts used up, expired, already verified)', examples: { closed: { summary: 'closed', value: gatewayError('error checking OTP.', { ...gatewayData, otp: '', attempts: 5, closed: true, ttl: 0 }) } } },
  },
};
const DOC_002_STATUS: DialectDoc = {
  summary: 'Seed 002: whether the id is verified',
  description: `API key. 200 with data once verified, 400 \`OTP not verified.\` before (decisions 14). Never consumes the id. See ${DOCS} (“Seed 002”).`,
  responses: {
    '200': { description: 'verified', examples: { verified: { summary: 'verified', value: { status: 'success', data: { ...gatewayData, otp: '', attempts: 1, closed: true } } } } },
    '400': { description: 'not verified yet, or the id does not exist', examples: { pending: { summary: 'not verified', value: gatewayError('OTP not verified.') }, missing: { summary: 'unknown id', value: gatewayError('the OTP does not exist') } } },
    ...GATEWAY_AUTH,
  },
};

// ---------- seed 004 ----------

const nhnHeader = (resultCode: number, resultMessage: string) => ({ header: { resultCode, resultMessage, successful: resultCode === 0 } });
const NHN_ERRORS: Record<string, Example> = {
  parameter: { summary: '-2 PARAMETER_ERROR', value: nhnHeader(-2, 'PARAMETER_ERROR: userId: is required') },
  http: { summary: '-3 HTTP_STATUS_ERROR', value: nhnHeader(-3, 'HTTP_STATUS_ERROR') },
  appKey: { summary: '-4 APPKEY_ERROR', value: nhnHeader(-4, 'APPKEY_ERROR: appKey: is not a valid OTP AppKey') },
  fail: { summary: '-1 FAIL', value: nhnHeader(-1, 'FAIL: FACTOR_LOCKED: too many wrong codes') },
};
const DOC_004_KEYS: DialectDoc = {
  summary: 'Seed 004: issue an authenticator key and QR code for a user',
  description: `The {appKey} selects the app (no API key). Every answer is HTTP 200 with \`header.resultCode\` (decisions 18). Served under \`/otp/v1.0\` and \`/otp/v1\`. See ${DOCS} (“Seed 004”).`,
  body: fields({ userId: str('the user, at most 128 characters, no `:`'), serviceName: str('issuer shown by the authenticator app') }),
  consumes: [JSON_MEDIA],
  responses: {
    '200': {
      description: 'resultCode 0 with the key, or an error resultCode (-1, -2, -3, -4)',
      examples: { issued: { summary: 'SUCCESS', value: { ...nhnHeader(0, 'SUCCESS'), Key: { encodedKey: 'QP7HQTTFPAN2AY65I7YHUHOKYZHXVPOS', qrCodeEncodedString: 'iVBORw0KGgo…' } } }, ...NHN_ERRORS },
    },
  },
};
const DOC_004_VERIFY: DialectDoc = {
  summary: 'Seed 004: verify a code from the user’s authenticator app',
  description: `The {appKey} selects the app (no API key). Every answer is HTTP 200 with \`header.resultCode\` (decisions 18). Served under \`/otp/v1.0\` and \`/otp/v1\`. See ${DOCS} (“Seed 004”).`,
  querystring: fields({ userId: str('the user the key was issued to'), encodedKey: str('the key issued to that user') }),
  responses: {
    '200': {
      description: 'resultCode 0, -101 (wrong code), -102 (code already used) or an error resultCode',
      examples: {
        verified: { summary: 'SUCCESS', value: nhnHeader(0, 'SUCCESS') },
        wrong: { summary: '-101 DATA_INVALID_ERROR', value: nhnHeader(-101, 'DATA_INVALID_ERROR') },
        replay: { summary: '-102 DATA_DUPLICATE_ERROR', value: nhnHeader(-102, 'DATA_DUPLICATE_ERROR') },
        ...NHN_ERRORS,
      },
    },
  },
};

// ---------- hosted page ----------

const HTML = 'text/html';
const DOC_PAGE_GET: DialectDoc = {
  summary: 'Hosted code-entry page of a seed-002 verification',
  description: 'The page linked as `url` in a seed-002 PUT answer (docs/hosted-page.md).',
  responses: {
    '200': { description: 'the page (HTML; JSON of the same state when the request accepts application/json)', mediaType: HTML, examples: { page: { summary: 'page', value: '<!doctype html><html lang="en">…</html>' } } },
  },
};
const DOC_PAGE_POST: DialectDoc = {
  summary: 'Submit a code on the hosted page',
  description: 'The form on the hosted page posts the code here (docs/hosted-page.md).',
  body: fields({ action: str('`check` (default) or `resend`'), otp: str('the code'), csrf: str('the token from the page') }),
  consumes: ['application/x-www-form-urlencoded'],
  responses: { '200': { description: 'the page with the outcome', mediaType: HTML, examples: { page: { summary: 'page', value: '<!doctype html><html lang="en">…</html>' } } } },
};
const DOC_PAGE_OPTIONS: DialectDoc = {
  summary: 'CORS preflight of the hosted page',
  description: 'Answers preflight requests for the hosted page (docs/hosted-page.md).',
  responses: { '204': { description: 'no content', mediaType: 'text/plain', examples: { empty: { summary: 'empty', value: '' } } } },
};
const DOC_STATIC: DialectDoc = {
  summary: 'Hosted page asset (script or stylesheet)',
  description: 'Files the hosted page loads (docs/hosted-page.md).',
  responses: {
    '200': { description: 'the file', mediaType: 'application/javascript', examples: { script: { summary: 'script', value: '(function () { … })();' } } },
    '404': { description: 'no such file', mediaType: 'text/plain', examples: { missing: { summary: 'not found', value: 'not found' } } },
  },
};

/** By `METHOD url`, with the url normalized by `docKey` (no trailing slash, `/otp/v1.0` read as `/otp/v1`). */
const TABLE: Record<string, DialectDoc> = {
  'POST /v1/otp': DOC_001_003,
  'POST /api/v1/otp': DOC_003_GENERATE,
  'POST /v1/otp/verify': DOC_003_VERIFY,
  'POST /api/v1/otp/verify': DOC_003_VERIFY,
  'POST /security/v1/201904/oauth/token': DOC_000_TOKEN,
  'POST /security/v1/201904/oauth/otp': DOC_000_REQUEST('body'),
  'GET /security/v1/201904/oauth/otp': DOC_000_REQUEST('query'),
  'POST /security/v1/201904/oauth/otp/verify': DOC_000_VERIFY,
  'GET /mobile/v1/202001/utils/auth/partner-signature': DOC_000_HELPER,
  'GET /api/health': DOC_002_HEALTH,
  'GET /api/providers': DOC_002_PROVIDERS,
  'PUT /api/otp/:id': DOC_002_PUT,
  'POST /api/otp/:id': DOC_002_CHECK,
  'POST /api/otp/:id/status': DOC_002_STATUS,
  'POST /otp/v1/appkeys/:appKey/keys': DOC_004_KEYS,
  'GET /otp/v1/appkeys/:appKey/codes/:code/verification': DOC_004_VERIFY,
  'GET /otp/:namespace/:id': DOC_PAGE_GET,
  'POST /otp/:namespace/:id': DOC_PAGE_POST,
  'OPTIONS /otp/:namespace/:id': DOC_PAGE_OPTIONS,
  'GET /static/:file': DOC_STATIC,
};

function docKey(method: string, url: string): string {
  const path = url.length > 1 ? url.replace(/\/$/, '') : url;
  return `${method.toUpperCase()} ${path.replace(/^\/otp\/v1\.0\//, '/otp/v1/')}`;
}

/** The documentation of one dialect route, or undefined. */
export function dialectDoc(method: string | readonly string[] | undefined, url: string): DialectDoc | undefined {
  if (typeof method !== 'string') return undefined;
  return TABLE[docKey(method, url)];
}

/** Response entries for the OpenAPI document (never given to fastify: they do not serialize anything). */
export function dialectResponses(doc: DialectDoc): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(doc.responses).map(([status, response]) => [
      status,
      {
        description: response.description,
        ...(response.retryAfter ? { headers: { 'retry-after': { type: 'integer', description: 'seconds to wait before retrying' } } } : {}),
        content: { [response.mediaType ?? JSON_MEDIA]: { schema: response.mediaType && response.mediaType !== JSON_MEDIA ? { type: 'string' } : { type: 'object', additionalProperties: true }, examples: response.examples } },
      },
    ]),
  );
}
