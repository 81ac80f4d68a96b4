import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../services/index.js';
import { requireApiKey } from '../auth.js';
import verifications from './verifications.js';

/** The native API under `/v1`: every route needs an API key (decisions 8). */
const nativeApi: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  app.addHook('preHandler', requireApiKey(services));
  await app.register(verifications, { services });
};

export default nativeApi;
