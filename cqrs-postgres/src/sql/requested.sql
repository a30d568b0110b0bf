-- Letters with an operator's request, in feed order (dead_letters_requested: an empty probe
-- when there is none). Columns as in dead_letters.sql (and its note on the ORDER BY).
SELECT d.transaction_id::text, d.position, d.stream_id, d.version, d.event_type, d.key, d.error,
       d.parked_at, d.request
FROM {schema}.dead_letters d
WHERE d.projection = $1 AND d.request IS NOT NULL
ORDER BY d.transaction_id, d.position
LIMIT $2
