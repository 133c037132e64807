-- A keyed write's effect, recorded with the write itself: the same Idempotency-Key (per
-- user) run twice (its first process died after committing, before recording its answer)
-- inserts nothing the second time. NULL for unkeyed writes, which a unique index allows
-- any number of.
ALTER TABLE items ADD COLUMN effect TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS items_effect ON items (effect);
