import { isExpired, type DeliveryStatus, type VerificationRecord } from '../../../core/verification.js';
import type { NamedVerification } from '../../../services/named-verifications.js';

/**
 * The `data` object of seed 002, every field of the collection in its order. Differences from the seed's
 * examples, all in docs/dialects.md: `attempts` counts verify tries (0 after a send), `otp` is the code
 * only in a PUT answer of an app with `echoCode` on and "" everywhere else (decisions 14), `closed` is true
 * once the verification takes no more codes (verified, locked, expired, failed).
 */
export interface OtpData {
  namespace: string;
  id: string;
  to: string;
  channel_description: string;
  address_description: string;
  extra: unknown;
  provider: string;
  provider_id: string;
  delivery_status: 'PENDING' | 'DELIVERED' | 'FAILED';
  failure_reason: string;
  otp: string;
  max_attempts: number;
  attempts: number;
  closed: boolean;
  ttl: number;
  url?: string;
}

/** otpd's delivery statuses (decisions 11) in the seed's words: accepted but unconfirmed is PENDING. */
export function deliveryStatusOf(status: DeliveryStatus): OtpData['delivery_status'] {
  switch (status) {
    case 'delivered':
      return 'DELIVERED';
    case 'failed':
    case 'undelivered':
      return 'FAILED';
    default:
      return 'PENDING';
  }
}

/** Verify tries so far: the failed ones, plus the successful one once verified. */
function triesOf(verification: VerificationRecord): number {
  return verification.attempts + (verification.status === 'approved' ? 1 : 0);
}

export function isClosed(verification: VerificationRecord, now: number): boolean {
  return verification.status !== 'pending' || isExpired(verification, now) || verification.attempts >= verification.maxAttempts;
}

export function hostedPageUrl(publicUrl: string, namespace: string, id: string): string {
  return `${publicUrl}/otp/${encodeURIComponent(namespace)}/${encodeURIComponent(id)}`;
}

export function otpData(named: NamedVerification, options: { code?: string; url?: string } = {}): OtpData {
  const v = named.verification;
  const now = named.readAt;
  const data: OtpData = {
    namespace: named.app.name,
    id: named.clientId,
    to: named.binding.to,
    channel_description: named.binding.channelDescription,
    address_description: named.binding.addressDescription,
    extra: named.binding.extra,
    provider: named.binding.provider,
    provider_id: v.providerMessageId ?? '',
    delivery_status: deliveryStatusOf(v.deliveryStatus),
    failure_reason: v.failureReason ?? '',
    otp: options.code ?? '',
    max_attempts: v.maxAttempts,
    attempts: triesOf(v),
    closed: isClosed(v, now),
    ttl: Math.max(0, Math.ceil((v.expiresAt - now) / 1000)),
  };
  if (options.url !== undefined) data.url = options.url;
  return data;
}
