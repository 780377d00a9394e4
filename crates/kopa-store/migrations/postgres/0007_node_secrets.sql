-- Kopa schema, version 7 (PostgreSQL): secrets the node draws for itself.

-- One random secret per purpose, drawn the first time the node needs it and kept for good
-- ('taxii-cursor': the key that seals TAXII `next` cursors). Hex text of 32 random bytes.
CREATE TABLE node_secrets (
    purpose TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
