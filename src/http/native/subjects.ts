import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Subject } from '../../services/subjects.js';
import type { Services } from '../../services/index.js';
import { principalOf } from '../auth.js';
import { contextOf } from '../request-context.js';
import { isoTime } from './views.js';

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$', description: 'your id of the user (seed 000 GetPlusID)' }) });

const PutBody = Type.Object(
  {
    phone: Type.Optional(Type.Union([Type.String({ maxLength: 16, description: 'E.164' }), Type.Null()])),
    email: Type.Optional(Type.Union([Type.String({ maxLength: 320 }), Type.Null()])),
  },
  { additionalProperties: false },
);

export const SubjectView = Type.Object(
  {
    id: Type.String(),
    phone: Type.Union([Type.String(), Type.Null()]),
    email: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Subject' },
);

function subjectView(subject: Subject): Static<typeof SubjectView> {
  return { ...subject, createdAt: isoTime(subject.createdAt), updatedAt: isoTime(subject.updatedAt) };
}

/**
 * Subjects: an app's users and their contact points. `PUT` replaces them whole (201 when new, 200 when
 * replaced); dialects that name a user rather than an address (seed 000) send to these.
 */
const subjects: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.put('/subjects/:id', { schema: { params: Id, body: PutBody, response: { 200: SubjectView, 201: SubjectView } } }, async (request, reply) => {
    const { subject, created } = await services.subjects.put(principalOf(request).app, request.params.id, request.body);
    return reply.code(created ? 201 : 200).send(subjectView(subject));
  });

  app.get('/subjects/:id', { schema: { params: Id, response: { 200: SubjectView } } }, async (request) =>
    subjectView(await services.subjects.get(principalOf(request).app, request.params.id)),
  );

  app.delete('/subjects/:id', { schema: { params: Id } }, async (request, reply) => {
    await services.personalData.eraseSubject(principalOf(request).app, request.params.id, contextOf(request));
    await services.subjects.delete(principalOf(request).app, request.params.id);
    return reply.code(204).send();
  });
};

export default subjects;
