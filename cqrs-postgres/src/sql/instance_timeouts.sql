-- The live timeouts of instance $2 of process $1, by key.
SELECT key, timeout_id, due_at, payload
FROM {schema}.process_timeouts
WHERE process = $1 AND instance = $2
ORDER BY key
