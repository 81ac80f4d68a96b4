/**
 * Sliding-window counter, the weighted two-window approximation (the "sliding window counter" of
 * Cloudflare's rate limiter and of the IETF RateLimit header draft's examples): the count over the last
 * `windowMs` is estimated as
 *
 *     previous × (time of the previous window still inside the sliding window / windowMs) + current
 *
 * where `current` and `previous` are the totals of the fixed window containing `now` and of the one
 * before it. Unlike a plain fixed window it never admits a double burst across a window boundary, and it
 * keeps O(1) state per key (two integers and a window start) instead of a log of timestamps.
 *
 * Pure math, shared by both stores: SQLite runs `decideSliding` inside its write transaction; the Redis
 * Lua script repeats the same few lines (src/store/redis/scripts.ts SLIDING_HIT) and returns the state,
 * from which `slidingResult` derives the answer here, so both backends answer identically.
 */

export interface SlidingState {
  /** Start (epoch ms) of the fixed window `current` belongs to. */
  windowStart: number;
  current: number;
  previous: number;
}

export interface SlidingDecision {
  allowed: boolean;
  /** The state to store (unchanged when refused). */
  state: SlidingState;
  /** Estimated count over the sliding window after this hit (fractional). */
  count: number;
  /** When refused: ms until a hit of the same cost would be admitted (if nothing else is counted). 0 when allowed. */
  retryAfterMs: number;
}

export function windowStartOf(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/** The stored state seen from `now`: rolled forward when `now` is in a later window. */
export function rollSliding(stored: SlidingState | undefined, windowMs: number, now: number): SlidingState {
  const start = windowStartOf(now, windowMs);
  if (!stored) return { windowStart: start, current: 0, previous: 0 };
  // A stored window at or after ours (another instance's clock runs slightly ahead): use it as it is.
  if (stored.windowStart >= start) return stored;
  if (stored.windowStart === start - windowMs) return { windowStart: start, current: 0, previous: stored.current };
  return { windowStart: start, current: 0, previous: 0 };
}

/**
 * The previous window counts with weight 1 at the start of the current window and 0 at its end. Written
 * as `previous × remaining / windowMs` in this order, as the Lua script does, so both round alike.
 */
export function slidingCount(state: SlidingState, windowMs: number, now: number): number {
  const remaining = windowMs - Math.min(windowMs, Math.max(0, now - state.windowStart));
  return (state.previous * remaining) / windowMs + state.current;
}

/** Earliest wait after which `cost` more fits under `limit`, assuming nothing else is counted meanwhile. */
export function slidingRetryAfterMs(state: SlidingState, limit: number, windowMs: number, now: number, cost: number): number {
  if (cost > limit) return 2 * windowMs;
  const windowEnd = state.windowStart + windowMs;
  if (state.current + cost <= limit && state.previous > 0) {
    // Inside this window: previous × (windowEnd − t) / windowMs + current + cost ≤ limit.
    const t = windowEnd - (windowMs * (limit - cost - state.current)) / state.previous;
    return Math.max(1, Math.ceil(t - now));
  }
  // In the next window `current` becomes `previous`: current × (windowMs − x) / windowMs + cost ≤ limit.
  const x = state.current > 0 ? Math.max(0, windowMs - (windowMs * (limit - cost)) / state.current) : 0;
  return Math.max(1, Math.ceil(windowEnd + x - now));
}

/**
 * Adds `cost` unless the sliding count would pass `limit`. A negative cost refunds an earlier hit (always
 * admitted, never below zero) — used when a later limit of the same request refuses it.
 */
export function decideSliding(stored: SlidingState | undefined, limit: number, windowMs: number, now: number, cost = 1): SlidingDecision {
  const state = rollSliding(stored, windowMs, now);
  const before = slidingCount(state, windowMs, now);
  if (cost > 0 && before + cost > limit) {
    return { allowed: false, state, count: before, retryAfterMs: slidingRetryAfterMs(state, limit, windowMs, now, cost) };
  }
  const next = { ...state, current: Math.max(0, state.current + cost) };
  return { allowed: true, state: next, count: slidingCount(next, windowMs, now), retryAfterMs: 0 };
}

/** The answer for a state a backend decided on its own (Redis): same fields as `decideSliding`. */
export function slidingResult(allowed: boolean, state: SlidingState, limit: number, windowMs: number, now: number, cost: number): SlidingDecision {
  const count = slidingCount(state, windowMs, now);
  return { allowed, state, count, retryAfterMs: allowed ? 0 : slidingRetryAfterMs(state, limit, windowMs, now, cost) };
}
