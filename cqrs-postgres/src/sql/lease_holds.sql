-- Whether lease $1 is held by owner $2 in epoch $3, unexpired by the database's clock; the row
-- stays locked FOR SHARE until the caller's transaction ends, so a takeover (whose update of
-- the row waits for the lock, try_acquire_lease.sql) cannot commit before the caller's writes
-- do, and a check after a takeover committed finds another epoch. The same fence as
-- save_checkpoint_fenced.sql, for a sink's own transaction. Run last, just before the commit:
-- the lock holds the worker's own renewals too. The clock is the check's, not the transaction's
-- start (now()), which a long transaction would leave behind.
SELECT EXISTS (
    SELECT 1
    FROM {schema}.leases
    WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
    FOR SHARE
) AS held
