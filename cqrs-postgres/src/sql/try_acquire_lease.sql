-- Takes the lease if it is free, expired, or ours (a renewal); returns a row only on success:
-- the lease's epoch and how long it lasts, in seconds from this statement.
-- The database's clock decides expiry, so workers' clocks need not agree.
-- Invariant: the epoch (fencing token) grows by one whenever the lease passes to a new holder,
-- also back to the same owner once it expired or was released; only a renewal of an unexpired
-- lease keeps it. Rows are never deleted, so an epoch is never handed out twice for a name.
-- The row lock this takes waits for a fenced checkpoint save in flight (which holds the row
-- FOR SHARE), so no save of the old epoch commits after a takeover.
INSERT INTO {schema}.leases AS l (name, owner, expires_at, epoch)
VALUES ($1, $2, now() + make_interval(secs => $3), 1)
ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner,
        expires_at = excluded.expires_at,
        epoch = CASE
            WHEN l.owner = excluded.owner AND l.expires_at > now() THEN l.epoch
            ELSE l.epoch + 1
        END
    WHERE l.owner = excluded.owner OR l.expires_at <= now()
RETURNING epoch, extract(epoch FROM expires_at - now())::float8 AS valid_for_secs
