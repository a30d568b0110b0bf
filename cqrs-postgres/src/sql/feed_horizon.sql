-- What holds the feed back: the oldest transaction still open anywhere in the cluster (its xid
-- is the horizon) and how many committed events wait behind it.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon,
       (SELECT extract(epoch FROM now() - min(xact_start))::float8
        FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL) AS oldest_open_seconds,
       (SELECT count(*)
        FROM {schema}.events
        WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) AS waiting_events
