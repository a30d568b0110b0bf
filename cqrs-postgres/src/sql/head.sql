-- The last position a feed reader can see now, and the horizon below which everything is visible.
SELECT (SELECT transaction_id::text || '/' || position
        FROM {schema}.events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY transaction_id DESC, position DESC
        LIMIT 1) AS head,
       pg_snapshot_xmin(pg_current_snapshot())::text AS horizon
