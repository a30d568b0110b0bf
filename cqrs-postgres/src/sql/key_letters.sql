-- The first letters of one key, in feed order. Columns as in dead_letters.sql (and its note on
-- the ORDER BY).
SELECT d.transaction_id::text, d.position, d.stream_id, d.version, d.event_type, d.key, d.error,
       d.parked_at, d.request
FROM {schema}.dead_letters d
WHERE d.projection = $1 AND d.key = $2
ORDER BY d.transaction_id, d.position
LIMIT $3
