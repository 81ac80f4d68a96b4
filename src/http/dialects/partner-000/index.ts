import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../../services/index.js';
import signedRoutes from './signed.js';
import tokenRoutes from './token.js';

/** Seed 000, the partner-signed OTP request: the token endpoint (OAuth errors) and the signed calls (ErrorCode bodies), each with its own error format. */
const partner000: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  await app.register(tokenRoutes, { services });
  await app.register(signedRoutes, { services });
};

export default partner000;
