-- Who holds an in-progress `Idempotency-Key` claim, and whether that process is alive
-- (http::idempotency). Every origin process beats its row in origin_heartbeats about every
-- 500 ms, stamped with the database's clock (unix milliseconds), so no two hosts' clocks
-- are compared. A claim (idempotency_keys.owner) whose owner has not beaten for a couple of
-- seconds belongs to a dead process and may be taken over at once, instead of blocking
-- its key until the lease ends. A claim with no owner (taken before this migration) waits
-- for its lease, as before. Stale heartbeat rows are deleted from time to time. Same as
-- ../sqlite/20250622000000_idempotency_owners.sql.
CREATE TABLE IF NOT EXISTS origin_heartbeats (
    owner TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
