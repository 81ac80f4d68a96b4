import type { Store } from '../store/store.js';

export interface WindowCount {
  allowed: boolean;
  /** The count after this event (unchanged when refused). */
  count: number;
  /** Milliseconds until the window closes and the count starts again. */
  resetMs: number;
}

interface CounterValue {
  count: number;
  /** Epoch ms at which the window closes. */
  until: number;
}

/**
 * Counts one event against `limit` in a window that opens at the first event and closes `windowMs` later
 * (or at `until`, when the window is tied to something else's lifetime, such as a code's validity).
 *
 * `store.hit` windows are aligned to the clock, so a burst straddling a boundary gets twice the limit; an
 * attempt limit or a per-user quota must not reset in the middle of what it guards. This counter is a
 * compare-and-set loop over one record, atomic on both stores. Every lost race means another caller's
 * write landed, which raises the count, so after at most `limit` + 1 rounds the count is at the limit;
 * the loop is bounded a little above that and fails closed.
 */
export async function countInWindow(
  store: Store,
  namespace: string,
  id: string,
  limit: number,
  window: { windowMs: number } | { until: number },
  now: number,
): Promise<WindowCount> {
  if (limit < 1) return { allowed: false, count: 0, resetMs: 0 };
  for (let round = 0; round < limit + 3; round++) {
    const current = await store.getRecord<CounterValue>(namespace, id, now);
    if (current && current.value.until > now) {
      const resetMs = current.value.until - now;
      if (current.value.count >= limit) return { allowed: false, count: current.value.count, resetMs };
      const next: CounterValue = { count: current.value.count + 1, until: current.value.until };
      if ((await store.putRecord(namespace, id, next, { ifVersion: current.version, ttlMs: resetMs }, now)) !== undefined) {
        return { allowed: true, count: next.count, resetMs };
      }
      continue;
    }
    const until = 'until' in window ? window.until : now + window.windowMs;
    if (until <= now) return { allowed: false, count: 0, resetMs: 0 };
    const first: CounterValue = { count: 1, until };
    // `ifVersion: null` writes only if no live record exists; an expired one counts as absent.
    if ((await store.putRecord(namespace, id, first, { ifVersion: current ? current.version : null, ttlMs: until - now }, now)) !== undefined) {
      return { allowed: true, count: 1, resetMs: until - now };
    }
  }
  return { allowed: false, count: limit, resetMs: 1_000 };
}
