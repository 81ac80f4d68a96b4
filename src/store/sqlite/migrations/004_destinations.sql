-- otpd schema, version 4: one row per destination for the rules of each send to it (Store `admitSend`,
-- src/core/destination-sends.ts): its cooldown and its sends-per-destination window, decided in one
-- statement pair and written as one page. Before, the cooldown was a `records` row ('send-cooldown') and
-- the window two `counters` rows, three B-trees each written at a random page for real traffic's scattered
-- numbers. A row may go once `expires_at` has passed (the cleanup job); until then a passed cooldown and
-- rolled-out counts read as none.
CREATE TABLE destinations (
  app_id          TEXT NOT NULL,
  to_address      TEXT NOT NULL,
  cooldown_until  INTEGER NOT NULL,
  window_start    INTEGER NOT NULL,
  sends           INTEGER NOT NULL,
  previous_sends  INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  PRIMARY KEY (app_id, to_address)
) STRICT, WITHOUT ROWID;

-- Carry the running windows and cooldowns over, so an upgrade does not let a destination receive more codes
-- than its limits allow. Old window rows are keyed `~sliding:<window start>:rl:<app>:sends-per-destination:<to>`
-- and expire two windows after their start; a destination's newest row is its current window, and the row
-- one window before it (if any) its previous one. App ids hold no ':'.
CREATE TEMP TABLE old_windows AS
WITH keyed AS (
  SELECT substr(key, 10) AS rest, window_start, count, expires_at FROM counters WHERE key LIKE '~sliding:%'
), split AS (
  SELECT substr(rest, instr(rest, ':') + 1) AS limit_key, window_start, count, expires_at FROM keyed
), named AS (
  SELECT substr(limit_key, 4, instr(substr(limit_key, 4), ':') - 1) AS app_id,
         substr(limit_key, 4 + instr(substr(limit_key, 4), ':') - 1) AS tail, window_start, count, expires_at
  FROM split WHERE limit_key LIKE 'rl:%'
)
SELECT app_id, substr(tail, 24) AS to_address, window_start, count, (expires_at - window_start) / 2 AS window_ms, expires_at
FROM named WHERE substr(tail, 1, 23) = ':sends-per-destination:' AND app_id <> '';

INSERT INTO destinations (app_id, to_address, cooldown_until, window_start, sends, previous_sends, expires_at)
SELECT cur.app_id, cur.to_address, 0, cur.window_start, cur.count,
       coalesce((SELECT prev.count FROM old_windows prev
                 WHERE prev.app_id = cur.app_id AND prev.to_address = cur.to_address AND prev.window_start = cur.window_start - cur.window_ms), 0),
       cur.expires_at
FROM old_windows cur
WHERE cur.window_start = (SELECT max(w.window_start) FROM old_windows w WHERE w.app_id = cur.app_id AND w.to_address = cur.to_address);

INSERT INTO destinations (app_id, to_address, cooldown_until, window_start, sends, previous_sends, expires_at)
SELECT substr(id, 1, instr(id, ':') - 1), substr(id, instr(id, ':') + 1), json_extract(value, '$.until'), 0, 0, 0, expires_at
FROM records WHERE namespace = 'send-cooldown' AND instr(id, ':') > 1 AND expires_at IS NOT NULL
  AND json_valid(value) AND typeof(json_extract(value, '$.until')) = 'integer'
ON CONFLICT (app_id, to_address) DO UPDATE SET cooldown_until = excluded.cooldown_until, expires_at = max(expires_at, excluded.expires_at);

DELETE FROM counters WHERE key IN (
  SELECT '~sliding:' || window_start || ':rl:' || app_id || ':sends-per-destination:' || to_address FROM old_windows
);
DELETE FROM records WHERE namespace = 'send-cooldown';
DROP TABLE old_windows;
