-- The gap-safe feed: rows of transactions older than the oldest one still open, in
-- (transaction_id, position) order. No transaction that can still commit is older than that
-- horizon, so nothing can ever appear behind a position a reader was handed.
-- One statement, one snapshot: the horizon returned is the one the rows were read under, and
-- both scans below see the same rows.
--
-- The window scan: `page` reads up to $6 rows after ($1, $2) below the horizon straight off
-- events_pkey, in order and unfiltered, and only then applies the category ($4), event-type
-- ($5) and stream-partition ($7 of $8: the first four bytes of md5(stream_id) as an unsigned
-- integer, modulo $8, as cqrs_core's StreamPartition computes it) filters, keeping the first $3 matches (the scan stops there). The filters sit above the
-- window's LIMIT, where the planner cannot push them down, so the plan is the same ordered index
-- scan whatever it guesses their selectivity to be. The page's own ORDER BY makes "the first $3
-- matches" a guarantee rather than the subquery's order kept by chance (SQL promises no order
-- without one); the window is already in that order, so it adds no sort to the plan. (With the filters in the scan, a custom plan
-- that guessed them rare seq-scanned and sorted the whole table.) The horizon is an index bound,
-- so nothing at or above it is read. The scans call pg_snapshot_xmin(pg_current_snapshot())
-- rather than read `horizon`: the same value (the statement's snapshot), but one the planner can
-- evaluate when it estimates the rows left. For a subquery's value it would guess that a third
-- pass, which can make the window look larger than the rows left and tip it into reading and
-- sorting them all. (When the rows left do fit in the window, that plan is fine.)
--
-- `window_end` is the window's last row when the window is full ($6 rows): every row up to it was
-- examined, so a filtered reader may move there even if nothing matched. NULL when the window is
-- short (everything below the horizon was examined), when there is no filter (every row scanned
-- is then returned, and the page says as much), and when the page is full (the reader moves to
-- its last event). The page test is a one-time filter: a reader catching up on events that
-- mostly match never pays for a second walk over the whole window, only for the rows it reads.
--
-- Rows: the page's events, in feed order, then one header row (its event columns NULL, its
-- transaction_id sorting last) with the horizon and the window end (transaction_id::text,
-- position); an event row has NULL there. Columns: those three, then the event columns in the
-- order row.rs reads them.
-- The shape is for the plan: `page` is NOT MATERIALIZED (it is named twice, and PostgreSQL
-- would otherwise copy every row of it, payloads included, into a tuple store; the second use,
-- the page test, runs only for a filtered reader and reads no payload), and the union's ORDER BY
-- is a Merge Append of the page in its index order and the one header row, where joining the
-- page to the horizon sorted it again. The feed statement took 1.3 ms for a page of 1,000 rows
-- against 0.5 ms for a bare keyset read of them; this shape takes 0.3 to 0.6 ms.
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
),
page AS NOT MATERIALIZED (
    SELECT w.*
    FROM (
        SELECT e.transaction_id, e.position, e.stream_id, e.version, e.event_type,
               e.schema_version, e.payload, e.metadata, e.recorded_at
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
),
window_end AS (
    SELECT e.transaction_id, e.position
    FROM {schema}.events e
    WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2::bigint)
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      AND ($4::text[] IS NOT NULL OR $5::text[] IS NOT NULL OR $8::bigint IS NOT NULL)
      AND (SELECT count(*) FROM page) < $3
    ORDER BY e.transaction_id, e.position
    OFFSET $6 - 1
    LIMIT 1
)
SELECT u.horizon, u.end_major, u.end_minor,
       u.transaction_id::text, u.position, u.stream_id, u.version, u.event_type,
       u.schema_version, u.payload, u.metadata, u.recorded_at
FROM (
    SELECT h.xmin::text AS horizon, we.transaction_id::text AS end_major,
           we.position AS end_minor,
           NULL::xid8 AS transaction_id, NULL::bigint AS position, NULL::text AS stream_id,
           NULL::bigint AS version, NULL::text AS event_type, NULL::integer AS schema_version,
           NULL::jsonb AS payload, NULL::jsonb AS metadata, NULL::timestamptz AS recorded_at
    FROM horizon h
    LEFT JOIN window_end we ON true
    UNION ALL
    SELECT NULL, NULL, NULL,
           p.transaction_id, p.position, p.stream_id, p.version, p.event_type,
           p.schema_version, p.payload, p.metadata, p.recorded_at
    FROM page p
) u
ORDER BY u.transaction_id, u.position
