-- Gives a lease up by ending it now, if its owner still holds it in this epoch (a lease that
-- expired, or passed to a later epoch, is left alone). The row stays, so whoever takes the
-- lease next gets a higher epoch.
UPDATE {schema}.leases
SET expires_at = now()
WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()
