import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../services/index.js';
import { requireApiKey } from '../auth.js';
import audit from './audit.js';
import factors from './factors.js';
import subjects from './subjects.js';
import verifications from './verifications.js';

/** The native API under `/v1`: every route needs an API key (decisions 8). */
const nativeApi: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  // JSON only: fastify also parses text/plain by default, which would turn into a confusing 400.
  app.removeContentTypeParser('text/plain');
  app.addHook('preHandler', requireApiKey(services));
  await app.register(verifications, { services });
  await app.register(factors, { services });
  await app.register(subjects, { services });
  await app.register(audit, { services });
};

export default nativeApi;
