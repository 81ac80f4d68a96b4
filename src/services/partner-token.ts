import { constantTimeEqual } from '../core/codes.js';
import type { Keyring } from '../core/keyring.js';
import type { AppRecord } from '../store/store.js';
import type { AppsService } from './apps.js';

/** Seed 000's partner tokens live 15 minutes: long enough for a sign-in flow, short enough to be worth little when leaked. */
export const PARTNER_TOKEN_TTL_SECONDS = 900;

export interface PartnerPrincipal {
  app: AppRecord;
  partnerId: string;
}

interface TokenPayload {
  /** PartnerID. */
  p: string;
  /** Expiry, Unix seconds. */
  e: number;
}

/**
 * The "partner token" of seed 000, issued by an OAuth 2.0 client-credentials grant (RFC 6749 §4.4) and
 * presented as a Bearer token (RFC 6750). Stateless: `base64url(payload).kid.mac`, the MAC an
 * HMAC-SHA256 under the keyring's `partner-token` subkey (decisions 5). The key id lets tokens issued
 * before a secret rotation stay valid until they expire; deleting the app invalidates them at once,
 * because every use looks the PartnerID up again.
 */
export class PartnerTokenService {
  constructor(
    private readonly apps: AppsService,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
  ) {}

  /** The app whose credentials these are; unknown id and wrong secret are the same answer (RFC 6749 §5.2 invalid_client). */
  async authenticateClient(partnerId: string, encryptKey: string): Promise<PartnerPrincipal | undefined> {
    const app = await this.apps.findByPartnerId(partnerId);
    if (!app) return undefined;
    const credentials = await this.apps.credentialsOf(app);
    return constantTimeEqual(credentials.encryptKey, encryptKey) ? { app, partnerId: credentials.partnerId } : undefined;
  }

  issue(principal: PartnerPrincipal): { accessToken: string; expiresIn: number } {
    const payload: TokenPayload = { p: principal.partnerId, e: Math.floor(this.clock() / 1000) + PARTNER_TOKEN_TTL_SECONDS };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const kid = this.keyring.currentKid;
    return { accessToken: `${body}.${kid}.${this.keyring.mac('partner-token', body, kid)}`, expiresIn: PARTNER_TOKEN_TTL_SECONDS };
  }

  /** The PartnerID and app of a live token, or undefined for anything else (malformed, forged, expired, deleted app). */
  async verify(token: string): Promise<PartnerPrincipal | undefined> {
    const parts = token.split('.');
    if (parts.length !== 3 || token.length > 512) return undefined;
    const [body, kid, mac] = parts as [string, string, string];
    if (!this.keyring.hasKid(kid) || !constantTimeEqual(this.keyring.mac('partner-token', body, kid), mac)) return undefined;
    let payload: TokenPayload;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenPayload;
    } catch {
      return undefined;
    }
    if (typeof payload.p !== 'string' || typeof payload.e !== 'number' || payload.e * 1000 <= this.clock()) return undefined;
    const app = await this.apps.findByPartnerId(payload.p);
    return app ? { app, partnerId: payload.p } : undefined;
  }
}
