-- Where a COPY of a new stream's events 1..$2 landed, as append_known_batch.sql's summary row:
-- the row of version $2 carries the highest position (the session draws the identity's values
-- in the order of the rows it copies) and the transaction id all of them share.
SELECT 1::bigint AS first_version, e.version AS last_version, e.position,
       e.transaction_id::text AS transaction_id
FROM {schema}.events e
WHERE e.stream_id = $1 AND e.version = $2
