SELECT transaction_id::text, position, stream_id, version, event_type, key, error, parked_at
FROM {schema}.dead_letters
WHERE projection = $1
ORDER BY transaction_id, position
