-- The events that carry correlation id $1 in their metadata, in feed order after ($2, $3), at
-- most $4: everything one request caused, for operators. A scan of the events (no index on the
-- metadata): an operator's query, not a hot path. Columns in the order row.rs reads them.
SELECT transaction_id, position, stream_id, version, event_type, schema_version, payload,
       metadata, recorded_at, event_id
FROM {schema}.events
WHERE metadata->>'correlation_id' = $1
  AND (transaction_id, position) > ($2::text::xid8, $3::bigint)
ORDER BY transaction_id, position
LIMIT $4
