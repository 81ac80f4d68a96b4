import type { DeliveryStatus, VerificationRecord } from '../core/verification.js';
import type { DeliveryUpdate } from './store.js';

/**
 * The order of delivery statuses within one send (decisions 11): queued, then sent, then one of the final
 * ones. Receipts can arrive before otpd has recorded that the provider took the message, and carriers
 * repeat themselves; a report never moves a send backwards. The Redis scripts mirror this table.
 */
export const DELIVERY_RANK: Readonly<Record<DeliveryStatus, number>> = { queued: 0, sent: 1, delivered: 2, undelivered: 2, failed: 2 };

/** Whether a delivery report changes the verification (`DeliveryUpdate.send` guards it; without it, always). */
export function deliveryUpdateApplies(record: Pick<VerificationRecord, 'sends' | 'deliveryStatus'>, update: DeliveryUpdate): boolean {
  if (update.send === undefined) return true;
  if (record.sends !== update.send) return false;
  return DELIVERY_RANK[update.status] >= DELIVERY_RANK[record.deliveryStatus];
}
