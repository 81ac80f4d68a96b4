-- otpd schema, version 1. Applied once, in order, by migrate.ts; never edited after release.
-- Tables are STRICT so a wrong type is an error, not a silent coercion.

CREATE TABLE apps (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  settings    TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  hash        TEXT NOT NULL UNIQUE,
  prefix      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_by_app ON api_keys(app_id);

-- Ids are time-ordered, so inserts append to the primary key B-tree. The only secondary index on the
-- insert path is the partial index of pending rows per destination, which stays small: rows leave it
-- as soon as they are approved, canceled, expired or locked.
CREATE TABLE verifications (
  id                   TEXT PRIMARY KEY,
  app_id               TEXT NOT NULL,
  to_address           TEXT NOT NULL,
  channel              TEXT NOT NULL,
  status               TEXT NOT NULL,
  code_hash            TEXT NOT NULL,
  code_kid             TEXT NOT NULL,
  code_length          INTEGER NOT NULL,
  attempts             INTEGER NOT NULL,
  max_attempts         INTEGER NOT NULL,
  sends                INTEGER NOT NULL,
  locale               TEXT,
  metadata             TEXT,
  expires_at           INTEGER NOT NULL,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  last_sent_at         INTEGER NOT NULL,
  delivery_status      TEXT NOT NULL,
  delivery_provider    TEXT,
  provider_message_id  TEXT,
  failure_reason       TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX verifications_pending_by_destination ON verifications(app_id, to_address) WHERE status = 'pending';
CREATE INDEX verifications_by_expiry ON verifications(expires_at);

CREATE TABLE idempotency (
  scope        TEXT NOT NULL,
  key          TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  response     TEXT,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE counters (
  key           TEXT PRIMARY KEY,
  window_start  INTEGER NOT NULL,
  count         INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE claims (
  key         TEXT PRIMARY KEY,
  expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE records (
  namespace   TEXT NOT NULL,
  id          TEXT NOT NULL,
  value       TEXT NOT NULL,
  version     INTEGER NOT NULL,
  expires_at  INTEGER,
  PRIMARY KEY (namespace, id)
) STRICT, WITHOUT ROWID;
