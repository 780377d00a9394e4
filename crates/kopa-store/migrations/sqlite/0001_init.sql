-- Kopa schema, version 1 (SQLite). Times are microseconds since the Unix epoch.

-- The node's own identity (one row).
CREATE TABLE node (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL,
    name TEXT NOT NULL
);

-- The last sequence number and date_added handed out (one row). Every object write reads and
-- advances it inside its transaction, so both strictly increase in commit order.
CREATE TABLE clock (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_seq INTEGER NOT NULL,
    last_added INTEGER NOT NULL
);
INSERT INTO clock (singleton, last_seq, last_added) VALUES (1, 0, 0);

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    role TEXT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE collections (
    cid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT,
    alias TEXT UNIQUE,
    read_all INTEGER NOT NULL,
    write_all INTEGER NOT NULL
);

CREATE TABLE collection_readers (
    cid INTEGER NOT NULL REFERENCES collections (cid),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    PRIMARY KEY (cid, org_id)
) WITHOUT ROWID;

CREATE TABLE collection_writers (
    cid INTEGER NOT NULL REFERENCES collections (cid),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    PRIMARY KEY (cid, org_id)
) WITHOUT ROWID;

-- One row per stored object version, with its stewardship (who may see it).
CREATE TABLE objects (
    seq INTEGER PRIMARY KEY,
    collection INTEGER NOT NULL REFERENCES collections (cid),
    stix_id TEXT NOT NULL,
    type TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    version INTEGER NOT NULL,
    date_added INTEGER NOT NULL,
    owner_org TEXT NOT NULL,
    author TEXT NOT NULL,
    tlp INTEGER NOT NULL CHECK (tlp BETWEEN 0 AND 4),
    narrowed INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE UNIQUE INDEX objects_key ON objects (collection, stix_id, version);
CREATE INDEX objects_collection_seq ON objects (collection, seq);
CREATE INDEX objects_date_added ON objects (date_added);

-- Organisations an object is narrowed to (besides its owner).
CREATE TABLE object_orgs (
    seq INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    PRIMARY KEY (seq, org_id)
) WITHOUT ROWID;

-- Named recipients of a TLP:RED object (besides its author).
CREATE TABLE object_users (
    seq INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (seq, user_id)
) WITHOUT ROWID;

-- Values that search finds an object by (lower case).
CREATE TABLE object_values (
    value TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    PRIMARY KEY (value, seq)
) WITHOUT ROWID;
CREATE INDEX object_values_seq ON object_values (seq);

CREATE TABLE statuses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    request_timestamp INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX statuses_time ON statuses (request_timestamp);

-- Append-only, hash-chained.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
