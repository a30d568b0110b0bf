-- Moves the position sequence past every stored position if it lags: logical replication copies
-- no sequence values, so after such a move new events would take positions the moved ones hold.
-- (The feed would still be ordered, by transaction id first, but a position should name one
-- event.) Never moves it back. Returns whether it moved.
WITH s AS (
    SELECT pg_get_serial_sequence('{schema}.events', 'position')::regclass AS seq
),
wanted AS (
    SELECT s.seq,
           coalesce(pg_sequence_last_value(s.seq), 0) AS last,
           (SELECT coalesce(max(position), 0) FROM {schema}.events) AS stored
    FROM s
)
SELECT CASE WHEN stored > last THEN setval(seq, stored) IS NOT NULL ELSE false END AS moved
FROM wanted
