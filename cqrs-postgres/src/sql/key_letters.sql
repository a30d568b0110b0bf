-- The first letters of one key, in feed order. Columns as in dead_letters.sql.
SELECT transaction_id::text, position, stream_id, version, event_type, key, error, parked_at,
       request
FROM {schema}.dead_letters
WHERE projection = $1 AND key = $2
ORDER BY transaction_id, position
LIMIT $3
