-- Group commit: the appends of several writers, each to its own stream and each knowing its
-- stream's version, in one statement and so one transaction. One row per event; `expected` is
-- its writer's expected version, `version` the version it takes.
-- A writer's events all pass or all fail the same check (one statement, one snapshot): the
-- stream's last event is the one at `expected` (none for 0). A writer that is behind is left
-- out, instead of failing the whole group on the unique index; it gets no rows back and appends
-- on its own, which says why.
-- A unique violation (an in-flight writer outside the group, a repeated event id) still fails
-- the whole statement; then every writer appends on its own.
-- The group runs in autocommit on the lane's own connection, so the rule of append.sql that a
-- stream's last event must not come from a younger transaction holds by construction: our id
-- is taken after the snapshot in which that event was committed.
-- The head is found by a LATERAL ... LIMIT 1, always one backward probe of the
-- (stream_id, version) index per row: a NOT EXISTS here may be planned as an anti-join over
-- the whole table, and a generic plan made while the table was small keeps it.
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, payload, metadata)
SELECT e.stream_id, e.version, e.event_id, e.event_type, e.schema_version,
       e.payload::{event_json}, e.metadata::{event_json}
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::integer[],
            $7::text[], $8::text[])
         AS e(stream_id, expected, version, event_id, event_type, schema_version, payload,
              metadata)
LEFT JOIN LATERAL (SELECT h.version
                   FROM {schema}.events AS h
                   WHERE h.stream_id = e.stream_id
                   ORDER BY h.version DESC
                   LIMIT 1) AS head ON true
WHERE coalesce(head.version, 0) = e.expected
RETURNING version, position, transaction_id::text, stream_id
