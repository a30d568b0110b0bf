-- Letters with an operator's request, in feed order (dead_letters_requested: an empty probe
-- when there is none). Columns as in dead_letters.sql.
SELECT transaction_id::text, position, stream_id, version, event_type, key, error, parked_at,
       request
FROM {schema}.dead_letters
WHERE projection = $1 AND request IS NOT NULL
ORDER BY transaction_id, position
LIMIT $2
