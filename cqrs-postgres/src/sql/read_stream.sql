-- Columns in the order row.rs reads them.
SELECT transaction_id, position, stream_id, version, event_type, schema_version, payload,
       metadata, recorded_at, event_id
FROM {schema}.events
WHERE stream_id = $1 AND version >= $2
ORDER BY version
LIMIT $3
