import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../services/index.js';

/** `GET /healthz`: 200 when the store answers, 503 with the reason when it does not. */
const health: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/healthz',
    {
      schema: {
        response: {
          200: Type.Object({ status: Type.Literal('ok') }),
          503: Type.Object({ status: Type.Literal('unavailable'), detail: Type.String() }),
        },
      },
    },
    async (_request, reply) => {
      try {
        await services.health();
        return { status: 'ok' as const };
      } catch (error) {
        return reply.code(503).send({ status: 'unavailable' as const, detail: error instanceof Error ? error.message : 'store unavailable' });
      }
    },
  );
};

export default health;
