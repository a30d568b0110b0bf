-- The gap-safe feed for a filtered reader: read_all_unfiltered.sql says why it is gap-safe, and
-- its rows are the same (the page's events, then one header row whose position is NULL and
-- whose first column is the horizon).
--
-- The window scan: up to $6 rows after ($1, $2) below the horizon, straight off events_pkey, in
-- order and unfiltered; only then the category ($4), event-type ($5) and stream-partition ($7
-- of $8: the first four bytes of md5(stream_id) as an unsigned integer, modulo $8, as
-- cqrs_core's StreamPartition computes it) filters, keeping the first $3 matches (the scan stops
-- there). The filters sit above the window's LIMIT, where the planner cannot push them down, so
-- the plan is the same ordered index scan whatever it guesses their selectivity to be. (With the
-- filters in the scan, a custom plan that guessed them rare seq-scanned and sorted the whole
-- table.) The page's own ORDER BY makes "the first $3 matches" a guarantee rather than the
-- subquery's order kept by chance; the window is already in that order, so it adds no sort. The
-- scan calls pg_snapshot_xmin(pg_current_snapshot()) rather than a subquery's value so that the
-- planner can evaluate it when it estimates the rows left.
--
-- A page that comes back short may be so because the window was full before it filled: the
-- reader then asks window_end.sql where the window ended, under this statement's horizon. That
-- question used to be part of this statement, behind a test of the page's length that ran the
-- page's scan a second time on every read (about 40% of the statement).
SELECT p.*
FROM (
    SELECT w.transaction_id, w.position, w.stream_id, w.version,
           w.event_type, w.schema_version, w.payload, w.metadata, w.recorded_at, w.event_id
    FROM (
        SELECT e.transaction_id, e.position, e.stream_id, e.version, e.event_type,
               e.schema_version, e.payload, e.metadata, e.recorded_at, e.event_id
        FROM {schema}.events e
        WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2::bigint)
          AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.transaction_id, e.position
        LIMIT $6
    ) w
    WHERE ($4::text[] IS NULL OR split_part(w.stream_id, '-', 1) = ANY ($4::text[]))
      AND ($5::text[] IS NULL OR w.event_type = ANY ($5::text[]))
      AND ($8::bigint IS NULL
           OR ('x' || substr(md5(w.stream_id), 1, 8))::bit(32)::bigint % $8::bigint = $7::bigint)
    ORDER BY w.transaction_id, w.position
    LIMIT $3
) p
UNION ALL
SELECT pg_snapshot_xmin(pg_current_snapshot()), NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL
