-- Starts projection $1 over: forgets its checkpoint and its dead letters (they belong to the
-- run it forgets; an event that still fails is parked again by the replay), and ends the term
-- of whoever holds its lease. The only statement that moves a checkpoint back
-- (save_checkpoint.sql only moves it forward).
-- Invariants:
-- * No save of the holder's term commits after the reset: the lease's epoch grows and the
--   lease ends now, so fenced saves (save_checkpoint_fenced.sql) and sinks' checks
--   (lease_holds.sql) of that epoch are refused from here on; the holder's keeper finds
--   another epoch on its next renewal, and its next term loads no checkpoint: it replays.
-- * A lease with no row yet gets one, ended: a worker that takes it at the same time either
--   committed first (its epoch then grows here) or takes it after, loading no checkpoint.
-- * The lease row is locked before the checkpoint (the one-time filters run the upsert
--   first), the order of a fenced save, so the two never deadlock; the upsert waits for a
--   save in flight, which holds the row FOR SHARE, to commit.
WITH fenced AS (
    INSERT INTO {schema}.leases AS l (name, owner, expires_at, epoch)
    VALUES ($1, '', now(), 1)
    ON CONFLICT (name) DO UPDATE
        SET epoch = l.epoch + 1,
            expires_at = least(l.expires_at, now())
    RETURNING 1
), letters AS (
    DELETE FROM {schema}.dead_letters
    WHERE projection = $1 AND EXISTS (SELECT FROM fenced)
)
DELETE FROM {schema}.checkpoints
WHERE name = $1 AND EXISTS (SELECT FROM fenced)
