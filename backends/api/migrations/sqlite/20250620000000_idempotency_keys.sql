-- Requests sent with an `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header), one
-- row per (user, key), shared by every origin process on this database (http::idempotency).
-- The primary key is the lock: a request owns a key only if its INSERT took the row, so two
-- processes racing with one key cannot both run the handler. A row is 'in_progress' while
-- its claim_token's request runs (expires_at is then a short lease, so a crashed origin
-- cannot hold a key for the whole TTL), then 'completed' with the response to replay.
-- Times are unix seconds. Same as ../postgres/20250620000000_idempotency_keys.sql but for
-- the body's type (BLOB).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    -- Hex SHA-256 over the method, the path and the body bytes.
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    claim_token TEXT NOT NULL,
    status BIGINT,
    content_type TEXT,
    location TEXT,
    body BLOB,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);
