import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OtpdError } from '../../../errors.js';
import type { Services } from '../../../services/index.js';
import type { FactorCheck } from '../../../services/factors.js';
import { toOtpdError } from '../../problem.js';
import { contextOf } from '../../request-context.js';

/**
 * Seed 004: the NHN Cloud (TOAST) OTP API — issue an authenticator key with its QR code for a user, then
 * verify the codes the user's app shows. Served at `/otp/v1.0/…` (the documented path) and `/otp/v1/…`
 * (the path of the seed's example). The app is the one whose appKey is in the path; every answer is the
 * documented `header` envelope, errors included, with HTTP 200 (decisions 18). Both routes call the same
 * factors service as the native `/v1/factors` API. docs/dialects.md lists every choice made here.
 */

/** The seed's error-code table. */
const RESULT = {
  SUCCESS: 0,
  FAIL: -1,
  PARAMETER_ERROR: -2,
  HTTP_STATUS_ERROR: -3,
  APPKEY_ERROR: -4,
  DATA_INVALID_ERROR: -101,
  DATA_DUPLICATE_ERROR: -102,
} as const;
type ResultName = keyof typeof RESULT;

function header(name: ResultName, detail?: string) {
  const resultCode = RESULT[name];
  return { header: { resultCode, resultMessage: detail ? `${name}: ${detail}` : name, successful: resultCode === 0 } };
}

/** A dialect answer that is not a success, thrown from a handler and written by the error handler. */
class ResultError extends Error {
  constructor(
    readonly result: ResultName,
    detail: string,
  ) {
    super(detail);
  }
}

const USER_ID_MAX = 128;
const SERVICE_NAME_MAX = 256;

/** One text parameter: present, a single string, within bounds; otherwise PARAMETER_ERROR naming it. */
function textParam(source: unknown, name: string, max: number, required: true): string;
function textParam(source: unknown, name: string, max: number, required: false): string | undefined;
function textParam(source: unknown, name: string, max: number, required: boolean): string | undefined {
  const value = source && typeof source === 'object' ? (source as Record<string, unknown>)[name] : undefined;
  if (value === undefined || value === null || value === '') {
    if (required) throw new ResultError('PARAMETER_ERROR', `${name}: is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw new ResultError('PARAMETER_ERROR', `${name}: must be a string`);
  if (value.length > max) throw new ResultError('PARAMETER_ERROR', `${name}: must be at most ${max} characters`);
  return value;
}

/** The factors service names its fields natively; the answer names the seed's parameters. */
const SEED_FIELDS: Record<string, string> = { account: 'userId', issuer: 'serviceName' };

function detailOf(error: OtpdError): string {
  if (error.code === 'VALIDATION' && error.errors) return error.errors.map((e) => `${SEED_FIELDS[e.field] ?? e.field}: ${e.message}`).join('; ');
  if (error.code === 'NOT_FOUND') return error.message;
  return `${error.code}: ${error.message}`;
}

/** Maps anything thrown to the seed's envelope; HTTP status stays 200 (decisions 18). */
function sendError(request: FastifyRequest, reply: FastifyReply, thrown: unknown): FastifyReply {
  if (thrown instanceof ResultError) return reply.code(200).send(header(thrown.result, thrown.message));
  const error = toOtpdError(thrown);
  if (error.retryAfter !== undefined) reply.header('Retry-After', String(error.retryAfter));
  let result: ResultName;
  switch (error.code) {
    case 'VALIDATION':
    case 'NOT_FOUND':
      result = 'PARAMETER_ERROR';
      break;
    case 'ROUTE_NOT_FOUND':
    case 'METHOD_NOT_ALLOWED':
    case 'UNSUPPORTED_MEDIA_TYPE':
    case 'PAYLOAD_TOO_LARGE':
      result = 'HTTP_STATUS_ERROR';
      break;
    default:
      // FACTOR_LOCKED, SECRET_MISMATCH, STORE_UNAVAILABLE, INTERNAL: the seed's generic failure.
      result = 'FAIL';
  }
  if (error.status >= 500) request.log.error({ err: error.cause ?? thrown, code: error.code }, 'request failed');
  return reply.code(200).send(header(result, detailOf(error)));
}

function resultOf(check: FactorCheck) {
  if (check.valid) return header('SUCCESS');
  return check.reason === 'code_reused'
    ? header('DATA_DUPLICATE_ERROR', 'this code was already used')
    : header('DATA_INVALID_ERROR', 'the code does not match');
}

const routes: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new OtpdError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.replace(/\/codes\/[^/]+/i, '/codes/***')}`)),
  );

  async function appOf(appKey: string) {
    const found = await services.apps.findByAppKey(appKey);
    if (!found) throw new ResultError('APPKEY_ERROR', 'appKey: is not a valid OTP AppKey');
    return found;
  }

  app.post<{ Params: { appKey: string } }>('/appkeys/:appKey/keys', async (request) => {
    const tenant = await appOf(request.params.appKey);
    const userId = textParam(request.body, 'userId', USER_ID_MAX, true);
    const serviceName = textParam(request.body, 'serviceName', SERVICE_NAME_MAX, false);
    const enrolment = await services.factors.issueUserKey(tenant, userId, serviceName);
    return { ...header('SUCCESS'), Key: { encodedKey: enrolment.secret, qrCodeEncodedString: await services.factors.qrPng(enrolment.uri) } };
  });

  app.get<{ Params: { appKey: string; code: string } }>('/appkeys/:appKey/codes/:code/verification', async (request) => {
    const tenant = await appOf(request.params.appKey);
    const userId = textParam(request.query, 'userId', USER_ID_MAX, true);
    const encodedKey = textParam(request.query, 'encodedKey', 256, true);
    if (!/^\d{6}$/.test(request.params.code)) throw new ResultError('PARAMETER_ERROR', 'code: must be the 6 digits shown by the OTP app');
    return resultOf(await services.factors.verifyUserKey(tenant, userId, encodedKey, request.params.code, contextOf(request)));
  });
};

/** Registers the seed-004 routes under both documented version paths. */
const nhn004: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  // JSON bodies only, as the seed documents, whatever parsers the root registers for other dialects;
  // any other content type is an HTTP-level error (-3).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  for (const prefix of ['/otp/v1.0', '/otp/v1']) await app.register(routes, { prefix, services });
};

export default nhn004;
