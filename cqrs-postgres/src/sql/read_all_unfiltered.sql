-- The gap-safe feed without a filter (read_all.sql says why it is gap-safe): up to $3 rows of
-- transactions older than the oldest one still open, after ($1, $2) in (transaction_id,
-- position) order, straight off events_pkey, then one header row with the horizon.
-- Without a filter every row scanned is returned, so there is no window and no window end,
-- and the rows need none of read_all.sql's leading columns: an event row is the event columns
-- in the order row.rs reads them, and the header is the one row whose position is NULL, its
-- first column the horizon. A plain Append of the page and the header: three NULL columns per
-- row and a Merge Append cost the filtered statement 0.2 ms per 1,000 rows more than this.
-- The page's order is the subquery's; the reader checks it and sorts if it ever were not.
-- The keyset and the limit are read through scalar subqueries, which the planner cannot see
-- into: every plan of the statement then has the same estimates, so PostgreSQL keeps the
-- generic one after five executions. Seen as values, they made each page's own plan look far
-- cheaper (1 row against thousands), and it planned nearly every page again: 117 us of 1.4 ms.
-- The index still takes the keyset as its condition (`ROW(...) > ROW($0, $1)`).
SELECT p.*
FROM (
    SELECT e.transaction_id, e.position, e.stream_id, e.version,
           e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, e.event_id
    FROM {schema}.events e
    WHERE (e.transaction_id, e.position) > (SELECT $1::text::xid8, $2::bigint)
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position
    LIMIT (SELECT $3::bigint)
) p
UNION ALL
SELECT pg_snapshot_xmin(pg_current_snapshot()), NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL
