-- otpd schema, version 5: a destination's pending verification is found through its `destinations` row
-- (`pending_id`, the id of the last verification created for it) instead of the partial index
-- `verifications_pending_by_destination`. The index was the last per-destination B-tree a create wrote
-- (real traffic's numbers are scattered, so each write was a random page of its own) and every change of
-- a verification's status rewrote it; the destinations row is written by the same create anyway.
-- The pointer may be stale (its verification approved, canceled, expired): a reader takes it as pending
-- only when the row it names still is. A row whose pointer names a pending, unexpired verification stays
-- through the cleanup (a resend extends a verification past its row's `expires_at`).
ALTER TABLE destinations ADD COLUMN pending_id TEXT;

-- Only one verification per destination is pending (each create supersedes the one before); should a
-- file hold more, the newest is the one the index's `ORDER BY id DESC` found.
INSERT INTO destinations (app_id, to_address, cooldown_until, window_start, sends, previous_sends, expires_at, pending_id)
SELECT app_id, to_address, 0, 0, 0, 0, expires_at, id
FROM verifications v
WHERE status = 'pending'
  AND id = (SELECT max(w.id) FROM verifications w WHERE w.app_id = v.app_id AND w.to_address = v.to_address AND w.status = 'pending')
ON CONFLICT (app_id, to_address) DO UPDATE SET pending_id = excluded.pending_id, expires_at = max(expires_at, excluded.expires_at);

DROP INDEX verifications_pending_by_destination;
