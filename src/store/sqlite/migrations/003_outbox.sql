-- otpd schema, version 3: the durable outbox (decisions 3; src/store/outbox.ts).
--
-- One waiting message per reference (a verification id, or a seed-001 reference): a resend replaces it.
-- `payload` is AES-256-GCM ciphertext (keyring purpose `outbox`, bound to `id`); a row is deleted as soon
-- as a provider took the message or the last try failed. `due_at` is the next try, or the end of a lease
-- while a process is sending it, so one index finds both. References are time-ordered ids, so inserts
-- append to the primary key; the due index is time-ordered too and stays small (decisions 21).
CREATE TABLE outbox (
  reference    TEXT PRIMARY KEY,
  id           TEXT NOT NULL,
  app_id       TEXT NOT NULL,
  payload      TEXT NOT NULL,
  send         INTEGER NOT NULL,
  due_at       INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  tries        INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  lease_token  TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX outbox_by_due ON outbox(due_at);
