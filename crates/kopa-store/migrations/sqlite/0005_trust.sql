-- Kopa schema, version 5 (SQLite): who may do what. Times are microseconds since the Unix epoch.

-- Object versions keyed by STIX id first: a new version is accepted only from the producer of the
-- versions already held anywhere on the node, which the write path looks up by id alone. The same
-- key as before (collection, id, version), in an order that also serves that lookup.
DROP INDEX objects_key;
CREATE UNIQUE INDEX objects_key ON objects (stix_id, collection, version);

-- One-time enrolment codes: how a user who lost every token is let in again. Only the SHA-256 of
-- the code's secret is kept. Issuing one revokes the user's tokens; redeeming it makes a new token
-- once. The rows stay, so that the user is shown who enrolled them and when.
CREATE TABLE enrolments (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed_at INTEGER,
    redeemed_from TEXT
);
CREATE INDEX enrolments_user ON enrolments (user_id);
