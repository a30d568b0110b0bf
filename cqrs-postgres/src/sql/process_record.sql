-- Records one process-manager input in one statement (one round trip, autocommit): appends the
-- journal events exactly as append.sql does (its CTEs and final SELECT, verbatim: a schema.rs
-- test holds them equal, so conflicts and duplicates decode through the same path), and only
-- if they were inserted, applies the instance's timeout changes and upserts its status row.
-- Everything or nothing is written: a unique violation fails the whole statement, a wrong
-- version inserts no event and so changes no timeout and no status.
--
-- $1 to $9: append.sql's (stream, event columns, expected version, command id, channel).
-- $10 process, $11 instance.
-- $12 to $15: timeouts to schedule or replace (key, timeout_id, due_at, payload JSON text).
-- $16: remove every other timeout of the instance (it ended).
-- $17, $18: timeouts to cancel (key, timeout_id; a NULL id cancels whatever the key holds).
-- The caller nets the changes, so no key is both scheduled and removed here: the same row is
-- never touched twice in one statement.
-- $19 to $27: the status row (state ... finished_at).
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
           e.payload::jsonb, e.metadata::jsonb
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
),
set_timeouts AS (
    INSERT INTO {schema}.process_timeouts (process, instance, key, timeout_id, due_at, payload)
    SELECT $10::text, $11::text, t.key, t.timeout_id, t.due_at, t.payload::jsonb
    FROM unnest($12::text[], $13::uuid[], $14::timestamptz[], $15::text[])
             AS t(key, timeout_id, due_at, payload)
    WHERE EXISTS (SELECT 1 FROM inserted)
    ON CONFLICT (process, instance, key) DO UPDATE
        SET timeout_id = EXCLUDED.timeout_id,
            due_at = EXCLUDED.due_at,
            payload = EXCLUDED.payload
),
cut_timeouts AS (
    DELETE FROM {schema}.process_timeouts AS t
    WHERE t.process = $10::text
      AND t.instance = $11::text
      AND t.key <> ALL ($12::text[])
      AND ($16::boolean
           OR EXISTS (SELECT 1
                      FROM unnest($17::text[], $18::uuid[]) AS c(key, timeout_id)
                      WHERE c.key = t.key
                        AND (c.timeout_id IS NULL OR c.timeout_id = t.timeout_id)))
      AND EXISTS (SELECT 1 FROM inserted)
),
status AS (
    INSERT INTO {schema}.process_instances
        (process, instance, state, correlation_id, version, last_input, pending_commands,
         next_timeout_at, started_at, progressed_at, finished_at)
    SELECT $10::text, $11::text, $19::text, $20::uuid, $21::bigint, $22::text, $23::integer,
           $24::timestamptz, $25::timestamptz, $26::timestamptz, $27::timestamptz
    WHERE EXISTS (SELECT 1 FROM inserted)
    ON CONFLICT (process, instance) DO UPDATE
        SET state = EXCLUDED.state,
            correlation_id = EXCLUDED.correlation_id,
            version = EXCLUDED.version,
            last_input = EXCLUDED.last_input,
            pending_commands = EXCLUDED.pending_commands,
            next_timeout_at = EXCLUDED.next_timeout_at,
            started_at = EXCLUDED.started_at,
            progressed_at = EXCLUDED.progressed_at,
            finished_at = EXCLUDED.finished_at
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
