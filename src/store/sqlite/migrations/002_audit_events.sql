-- otpd schema, version 2: the audit log and the webhook event queue (docs/audit-and-events.md).

-- Append-only, one app's entries in one range of the primary key: ids are time-ordered, so inserts append
-- at the end of their app's range and listing newest-first is a backwards walk of that range. No secondary
-- index on the insert path (decisions 21); erasure finds a person's entries by scanning in chunks.
CREATE TABLE audit (
  app_id              TEXT NOT NULL,
  id                  TEXT NOT NULL,
  at                  INTEGER NOT NULL,
  event               TEXT NOT NULL,
  resource            TEXT,
  key_id              TEXT,
  ip                  TEXT,
  user_agent          TEXT,
  request_id          TEXT,
  destination_hash    TEXT,
  destination_masked  TEXT,
  details             TEXT,
  PRIMARY KEY (app_id, id)
) STRICT, WITHOUT ROWID;

-- Webhook events waiting for delivery. `due_at` is the next attempt (or the end of a lease); the index is
-- small: rows leave as soon as they are delivered or abandoned.
CREATE TABLE events (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL,
  type        TEXT NOT NULL,
  payload     TEXT NOT NULL,
  attempts    INTEGER NOT NULL,
  due_at      INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  last_error  TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX events_by_due ON events(due_at);
