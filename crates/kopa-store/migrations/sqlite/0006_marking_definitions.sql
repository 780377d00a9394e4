-- Kopa schema, version 6 (SQLite): marking definitions found by id, whatever its case.

-- The write path reads the TLP that stored marking definitions define, for the custom marking ids
-- the objects of a batch name (one query per batch). Ids are compared case-insensitively; only
-- marking-definition rows are indexed.
CREATE INDEX objects_marking_definitions ON objects (lower(stix_id)) WHERE type = 'marking-definition';
