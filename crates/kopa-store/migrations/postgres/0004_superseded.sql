-- Kopa schema, version 4 (PostgreSQL): which object versions have a later version.

-- 1 when a later version of the same object (same collection and STIX id) is stored, else 0. A
-- version marked 0 is the latest for every reader, so reads of the latest versions (the TAXII
-- default) skip looking for a later visible one; a version marked 1 is still checked against the
-- versions the reader may see. Every write that adds or deletes versions of an object already
-- stored brings the marks of that object's versions up to date in its transaction.
ALTER TABLE objects ADD COLUMN superseded BIGINT NOT NULL DEFAULT 0;
UPDATE objects SET superseded = 1 WHERE EXISTS (SELECT 1 FROM objects l WHERE l.collection =
    objects.collection AND l.stix_id = objects.stix_id AND l.version > objects.version);
