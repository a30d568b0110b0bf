SELECT stream_id, version, event_id, transaction_id::text AS transaction_id, position
FROM {schema}.events
WHERE event_id = ANY ($1::uuid[])
ORDER BY transaction_id, position
