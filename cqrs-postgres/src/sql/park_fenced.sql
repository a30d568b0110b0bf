-- Parks a dead letter under a lease, as park.sql does, but only while the lease of the same name
-- ($1) is held by owner $10 in epoch $11 and unexpired by the database's clock, checked in this
-- statement. Returns whether the lease held; when it did not, nothing was written.
-- Invariant: the same fence as save_checkpoint_fenced.sql (the lease row locked FOR SHARE, so a
-- takeover or a reset, which update the row, wait for a park in flight, and a park after them
-- finds another epoch): a worker fenced off cannot park a letter the next term would load.
WITH lease AS (
    SELECT 1
    FROM {schema}.leases
    WHERE name = $1 AND owner = $10 AND epoch = $11 AND expires_at > now()
    FOR SHARE
), parked AS (
    INSERT INTO {schema}.dead_letters
        (projection, transaction_id, position, stream_id, version, event_type, key, error, parked_at)
    SELECT $1, $2::text::xid8, $3, $4, $5, $6, $7, $8, $9
    WHERE EXISTS (SELECT 1 FROM lease)
    ON CONFLICT (projection, transaction_id, position) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM lease) AS held
