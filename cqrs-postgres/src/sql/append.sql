-- Appends a batch in one statement: checks the expected version, inserts every event, records
-- the command id. $7 is the expected version (NULL: any). $9 is the channel to NOTIFY in the
-- statement (only inside a caller's transaction; see notify.rs), or NULL.
--
-- The feed orders by (transaction_id, position), so a stream's events must never be written by
-- a transaction older than the one that wrote the stream's last event: in a caller's own
-- transaction the id may have been taken long before. `in_order` refuses that case.
WITH last AS (
    SELECT version, transaction_id
    FROM {schema}.events
    WHERE stream_id = $1
    ORDER BY version DESC
    LIMIT 1
),
current AS (
    SELECT coalesce((SELECT version FROM last), 0) AS version,
           coalesce((SELECT transaction_id <= pg_current_xact_id() FROM last), true) AS in_order
),
inserted AS (
    INSERT INTO {schema}.events
        (stream_id, version, event_id, event_type, schema_version, payload, metadata)
    SELECT $1, current.version + e.ord, e.event_id, e.event_type, e.schema_version,
           e.payload::{event_json}, e.metadata::{event_json}
    FROM current,
         unnest($2::uuid[], $3::text[], $4::integer[], $5::text[], $6::text[])
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)
    WHERE ($7::bigint IS NULL OR current.version = $7::bigint) AND current.in_order
    ORDER BY e.ord
    RETURNING version, position
),
summary AS (
    SELECT min(version) AS first_version, max(version) AS last_version, max(position) AS position
    FROM inserted
),
command AS (
    INSERT INTO {schema}.commands
        (command_id, stream_id, first_version, last_version, transaction_id, position)
    SELECT $8::uuid, $1, summary.first_version, summary.last_version, pg_current_xact_id(),
           summary.position
    FROM summary
    WHERE $8::uuid IS NOT NULL AND summary.position IS NOT NULL
)
SELECT current.version AS current_version,
       current.in_order,
       summary.first_version,
       summary.last_version,
       summary.position,
       CASE WHEN summary.position IS NOT NULL THEN pg_current_xact_id()::text END AS transaction_id,
       CASE WHEN summary.position IS NOT NULL AND $9::text IS NOT NULL
            THEN pg_notify($9, '') END AS notified
FROM current, summary
