-- What holds the feed back: the oldest transaction still open anywhere in the cluster (its xid
-- is the horizon), who holds it, and how many committed events wait behind it.
-- Open transactions are those of sessions (pg_stat_activity) and prepared ones
-- (pg_prepared_xacts: two-phase commits waiting for COMMIT / ROLLBACK PREPARED, in no session).
-- Another role's session shows its xid to everyone but its start only to members of that role
-- or pg_read_all_stats: its age is then NULL, and the oldest age is over what can be seen.
-- `holder` is the transaction whose xid is the horizon (xid is the low 32 bits of xid8); none
-- when nothing is open (the horizon is then an xid not assigned yet). Every session's xid is
-- visible to every role, so a session at the horizon is always found.
WITH h AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
),
open AS (
    SELECT backend_xid AS xid, xact_start AS since, pid, NULL::text AS gid
    FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction, prepared, NULL, gid
    FROM pg_prepared_xacts
)
SELECT h.xmin::text AS horizon,
       (SELECT extract(epoch FROM now() - min(since))::float8 FROM open) AS oldest_open_seconds,
       holder.pid AS holder_pid,
       holder.gid AS holder_gid,
       extract(epoch FROM now() - holder.since)::float8 AS holder_seconds,
       (SELECT count(*)
        FROM {schema}.events
        WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) AS waiting_events
FROM h
LEFT JOIN LATERAL (
    SELECT o.pid, o.gid, o.since
    FROM open o
    WHERE o.xid = ((h.xmin::text::numeric % 4294967296)::text)::xid
    LIMIT 1
) holder ON true
