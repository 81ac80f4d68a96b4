import type { FastifyRequest } from 'fastify';
import { OtpdError, isOtpdError } from '../../errors.js';
import { DEFAULT_APP } from '../../services/apps.js';
import type { Services } from '../../services/index.js';
import type { AppRecord } from '../../store/store.js';
import { apiKeyOf } from '../auth.js';

/** `extensions.reason` of the UNAUTHORIZED error for a keyless request the app does not allow. */
export const KEYLESS_ACCESS_OFF = 'keyless_access_off';

/**
 * The app a request to a dialect whose seed documents no authentication (001, 003) acts for
 * (decisions 8): an API key, when given, selects its app and counts against its quota, exactly as on
 * the native API; without one, the `default` app, if its `keylessAccess` setting allows (the setting is
 * off by default for apps created with NODE_ENV=production).
 */
export async function keylessApp(services: Services, request: FastifyRequest): Promise<AppRecord> {
  const apiKey = apiKeyOf(request);
  if (apiKey !== undefined) {
    const principal = await services.apps.authenticate(apiKey);
    if (!principal) throw new OtpdError('UNAUTHORIZED', 'this API key is unknown or revoked');
    await services.apps.consumeQuota(principal);
    request.principal = principal;
    return principal.app;
  }
  let app: AppRecord | undefined;
  try {
    app = await services.apps.get(DEFAULT_APP);
  } catch (error) {
    if (!isOtpdError(error, 'NOT_FOUND')) throw error;
  }
  if (!app?.settings.keylessAccess) {
    throw new OtpdError('UNAUTHORIZED', 'this server accepts this API only with an API key ("Authorization: Bearer KEY"); keylessAccess is off', {
      extensions: { reason: KEYLESS_ACCESS_OFF },
    });
  }
  return app;
}
