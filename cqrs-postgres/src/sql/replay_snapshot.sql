-- A load behind a snapshot in one round trip: the stream's snapshot, if any (the row whose
-- event_type is NULL, its state as JSON text), then up to $2 events after its version, as
-- replay.sql reads them. Both parts read the same data (one statement, one MVCC snapshot).
-- The outer ORDER BY is what orders the parts (an Append's order is not promised); it sorts
-- at most $2 + 1 rows, which the caller keeps small.
SELECT version, event_type, schema_version, payload
FROM (
    SELECT 0 AS part, version, NULL::text AS event_type, schema_version, state::text AS payload
    FROM {schema}.snapshots
    WHERE stream_id = $1
    UNION ALL
    (SELECT 1, version, event_type, schema_version, payload::text
     FROM {schema}.events
     WHERE stream_id = $1
       AND version > COALESCE((SELECT version FROM {schema}.snapshots WHERE stream_id = $1), 0)
     ORDER BY version
     LIMIT $2)
) AS load
ORDER BY part, version
