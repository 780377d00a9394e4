-- Kopa schema, version 3 (SQLite): federation sync. Times are microseconds since the Unix epoch.

-- The home node of an organisation hosted on a peer (a directory entry); NULL = hosted here.
ALTER TABLE orgs ADD COLUMN node TEXT;

-- Provenance of received objects: the origin node (from the signed provenance extension) and the
-- peer node that delivered the object. Both NULL for objects written on this node.
ALTER TABLE objects ADD COLUMN origin TEXT;
ALTER TABLE objects ADD COLUMN via TEXT;

-- Whether this node pushes to the peer, and the sync loop's last status report (JSON).
ALTER TABLE peers ADD COLUMN push INTEGER NOT NULL DEFAULT 0;
ALTER TABLE peers ADD COLUMN status TEXT;
