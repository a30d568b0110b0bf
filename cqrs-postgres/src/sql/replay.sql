-- What a load folds, in the order read.rs's replay reads it: no metadata, position or time,
-- and the payload as the JSON text it decodes from.
SELECT version, event_type, schema_version, payload::text
FROM {schema}.events
WHERE stream_id = $1 AND version >= $2
ORDER BY version
LIMIT $3
