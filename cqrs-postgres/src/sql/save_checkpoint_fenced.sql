-- Moves a checkpoint forward under a lease: only while the lease of the same name is held by
-- owner $4 in epoch $5 and unexpired by the database's clock, checked in this statement.
-- Returns whether the lease held; when it did not, nothing was written.
-- Invariants:
-- * No save of an old epoch commits after a takeover. The lease row is locked FOR SHARE: a
--   takeover's update of the row (try_acquire_lease.sql) waits until this save commits, and a
--   save that runs after a takeover committed re-reads the row and finds another epoch.
-- * A checkpoint never moves back, as in save_checkpoint.sql: a save at or before the stored
--   position writes nothing (and still reports the lease as held).
WITH lease AS (
    SELECT 1
    FROM {schema}.leases
    WHERE name = $1 AND owner = $4 AND epoch = $5 AND expires_at > now()
    FOR SHARE
), saved AS (
    INSERT INTO {schema}.checkpoints AS c (name, transaction_id, position)
    SELECT $1, $2::text::xid8, $3
    WHERE EXISTS (SELECT 1 FROM lease)
    ON CONFLICT (name) DO UPDATE
        SET transaction_id = excluded.transaction_id,
            position = excluded.position,
            updated_at = now()
        WHERE (c.transaction_id, c.position) < (excluded.transaction_id, excluded.position)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM lease) AS held
