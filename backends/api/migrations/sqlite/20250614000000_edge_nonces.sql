-- Nonces of signed requests that change state, kept for their signature's window so that
-- every origin process sharing this database refuses a replay (edge_signature::nonces).
-- Identical to ../postgres/20250614000000_edge_nonces.sql: both dialects read it the same.
CREATE TABLE IF NOT EXISTS edge_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS edge_nonces_expiry ON edge_nonces (expires_at);
