-- append_known.sql for several events: the same INSERT and checks, and one summary row back
-- however many events, so a batch costs no row per event on the wire. A NULL position means the
-- check failed and nothing was written; append.sql then says why. (All the rows share one
-- transaction, so the last in feed order is the one of the highest position.)
WITH inserted AS (
    INSERT INTO {schema}.events
        (stream_id, version, event_id, event_type, schema_version, payload, metadata)
    SELECT $1, $7 + e.ord, e.event_id, e.event_type, e.schema_version,
           e.payload::jsonb, e.metadata::jsonb
    FROM unnest($2::uuid[], $3::text[], $4::integer[], $5::text[], $6::text[])
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)
    WHERE $7::bigint = 0
       OR EXISTS (SELECT FROM {schema}.events
                  WHERE stream_id = $1 AND version = $7 AND transaction_id <= pg_current_xact_id())
    RETURNING version, position
)
SELECT min(version) AS first_version, max(version) AS last_version, max(position) AS position,
       CASE WHEN count(*) > 0 THEN pg_current_xact_id()::text END AS transaction_id
FROM inserted
