import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { invalid } from '../../errors.js';
import { AUDIT_EVENTS, MAX_AUDIT_LIMIT } from '../../services/audit.js';
import type { Services } from '../../services/index.js';
import type { AuditEntry } from '../../store/store.js';
import { principalOf } from '../auth.js';
import { problemResponses } from '../schemas.js';
import { isoTime } from './views.js';

// Query strings are text: numbers and times are checked here and parsed in the handler (no type coercion).
const Query = Type.Object(
  {
    event: Type.Optional(Type.Enum(AUDIT_EVENTS, { description: 'only entries of this event' })),
    verificationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'only entries about this verification (or factor, key, app id)' })),
    since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 time; entries at or after it' })),
    until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 time; entries before it' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: `entries per page, 1-${MAX_AUDIT_LIMIT} (default 50)` })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the `nextCursor` of the previous page' })),
  },
  { additionalProperties: false },
);

export const AuditEntryView = Type.Object(
  {
    id: Type.String({ description: 'opaque, unique in the app, time-ordered' }),
    at: Type.String({ format: 'date-time' }),
    event: Type.String(),
    resource: Type.Union([Type.String(), Type.Null()], { description: 'the verification, factor, API key or app the event is about' }),
    keyId: Type.Union([Type.String(), Type.Null()], { description: 'the API key the request used' }),
    ip: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    destination: Type.Union([Type.Object({ hash: Type.String(), masked: Type.Union([Type.String(), Type.Null()]) }), Type.Null()], {
      description: 'the person reached: keyed hash and masked form, never the number or address',
    }),
    details: Type.Union([Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])), Type.Null()]),
  },
  { $id: 'AuditEntry' },
);

const AuditPageView = Type.Object({
  items: Type.Array(AuditEntryView),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as `cursor` for the next page; null on the last' }),
});

export function auditEntryView(entry: AuditEntry): Static<typeof AuditEntryView> {
  return {
    id: entry.id,
    at: isoTime(entry.at),
    event: entry.event,
    resource: entry.resource,
    keyId: entry.keyId,
    ip: entry.ip,
    userAgent: entry.userAgent,
    requestId: entry.requestId,
    destination: entry.destinationHash === null ? null : { hash: entry.destinationHash, masked: entry.destinationMasked },
    details: entry.details,
  };
}

function time(field: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(field, 'must be an ISO 8601 date or time such as 2025-01-31T12:00:00Z');
  return ms;
}

const AuditSchema = {
  summary: 'List the audit log',
  description:
    'The app’s audit entries, newest first: every create, send, check (success, failure, replay), lockout and admin action, with the API key, IP, user agent and request id. Never a code or a secret. Page with `cursor`; a page may hold fewer than `limit` entries and still have a `nextCursor` when filters match few entries.',
  querystring: Query,
  response: { 200: AuditPageView, ...problemResponses('VALIDATION') },
};

/** `GET /v1/audit` (docs/audit-and-events.md). */
const audit: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.get('/audit', { schema: AuditSchema }, async (request) => {
    const query = request.query;
    const page = await services.audit.list(principalOf(request).app, {
      event: query.event,
      verificationId: query.verificationId,
      since: time('since', query.since),
      until: time('until', query.until),
      limit: query.limit === undefined ? undefined : Number(query.limit),
      cursor: query.cursor,
    });
    return { items: page.items.map(auditEntryView), nextCursor: page.nextCursor ?? null };
  });
};

export default audit;
