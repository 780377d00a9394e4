-- Kopa schema, version 2 (SQLite): federation peers. Times are microseconds since the Unix epoch.

-- Peer nodes declared with `kopa peer add`. `token` is the token this node presents to the peer: it
-- must be usable, so it is kept as given (a secret at rest, like the database itself). `policy` is the
-- export policy as JSON (kopa-federation's ExportPolicy).
CREATE TABLE peers (
    name TEXT PRIMARY KEY,
    node_id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    public_key TEXT NOT NULL,
    token TEXT,
    policy TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    last_sync_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER,
    error_count INTEGER NOT NULL DEFAULT 0
);

-- Where the pull from each of a peer's collections stopped: the opaque TAXII `next` cursor or the
-- last `X-TAXII-Date-Added-Last`, stored as the sync loop chooses. Removed with the peer.
CREATE TABLE peer_cursors (
    peer TEXT NOT NULL REFERENCES peers (name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    cursor TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (peer, collection)
);
