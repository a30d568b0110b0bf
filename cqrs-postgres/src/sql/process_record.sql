-- Records one process-manager input in one statement (one round trip, autocommit). This file
-- holds only what a record adds to an append: schema.rs splices these CTEs into append.sql,
-- after its own and before its final SELECT, so the journal event is appended exactly as an
-- append does and conflicts and duplicates decode through the same path. Only if the event
-- was inserted do they apply the instance's timeout changes and upsert its status row.
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
