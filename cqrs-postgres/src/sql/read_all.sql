-- The gap-safe feed: rows of transactions older than the oldest one still open, in
-- (transaction_id, position) order. No transaction that can still commit is older than that
-- horizon, so nothing can ever appear behind a position a reader was handed.
-- One statement, one snapshot: the horizon returned is the one the rows were read under (a row
-- of NULLs carries it when no event qualifies). $4 / $5: category and event-type filters.
-- Columns after the horizon in the order row.rs reads them.
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
),
page AS (
    SELECT e.transaction_id, e.position, e.stream_id, e.version, e.event_type,
           e.schema_version, e.payload, e.metadata, e.recorded_at
    FROM {schema}.events e, horizon h
    WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2::bigint)
      AND e.transaction_id < h.xmin
      AND ($4::text[] IS NULL OR split_part(e.stream_id, '-', 1) = ANY ($4::text[]))
      AND ($5::text[] IS NULL OR e.event_type = ANY ($5::text[]))
    ORDER BY e.transaction_id, e.position
    LIMIT $3
)
SELECT h.xmin::text AS horizon, p.transaction_id::text, p.position, p.stream_id, p.version,
       p.event_type, p.schema_version, p.payload, p.metadata, p.recorded_at
FROM horizon h
LEFT JOIN page p ON true
ORDER BY p.transaction_id, p.position
