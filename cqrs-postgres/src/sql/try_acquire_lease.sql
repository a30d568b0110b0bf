-- Takes the lease if it is free, expired, or ours (a renewal); returns a row only on success.
-- The database's clock decides expiry, so workers' clocks need not agree.
INSERT INTO {schema}.leases AS l (name, owner, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE l.owner = excluded.owner OR l.expires_at <= now()
RETURNING owner
