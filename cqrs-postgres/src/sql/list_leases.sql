-- The leases held now whose names start with $1, in name order, with the time each has left by
-- the database's clock (partitioned workers list their members with it).
SELECT name, owner, epoch, extract(epoch FROM expires_at - now())::float8 AS valid_for_secs
FROM {schema}.leases
WHERE starts_with(name, $1) AND expires_at > now()
ORDER BY name
