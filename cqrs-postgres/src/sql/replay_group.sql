-- Several loads in one statement (group/loads.rs): for each (stream, from, max) of the arrays,
-- what replay.sql returns for it, its index in the arrays (from 1) as a fifth column. Columns
-- in the order read.rs's replay reads them; the index last, so a row decodes as replay.sql's.
-- The rows come as the nested loop reads them (each load's in version order, the loads in
-- index order); the reader checks that and sorts a load's rows if a plan ever did otherwise.
-- The arrays are read through scalar subqueries, which the planner cannot see into: every
-- plan then has the same estimates, so PostgreSQL keeps the generic one (as read_all.sql).
SELECT e.version, e.event_type, e.schema_version, e.payload::text, r.i
FROM unnest((SELECT $1::text[]), (SELECT $2::bigint[]), (SELECT $3::bigint[]))
         WITH ORDINALITY AS r(stream_id, from_version, max_rows, i)
CROSS JOIN LATERAL (
    SELECT version, event_type, schema_version, payload
    FROM {schema}.events
    WHERE stream_id = r.stream_id AND version >= r.from_version
    ORDER BY version
    LIMIT r.max_rows
) e
