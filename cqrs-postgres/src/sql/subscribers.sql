-- Every reader of the feed the store knows of, one row each, for operators: a name with a
-- checkpoint, a lease, a recorded breaker, parked dead letters or (for process managers, named
-- "process:{TYPE}") instance rows; and the event-bus consumers with parked messages.
-- Lag counts the committed events a reader could see (below the horizon, as the feed reads) past
-- its checkpoint, whatever its filter (the store does not know filters), and the oldest of them
-- (the first in feed order).
-- $1: only names starting with it (NULL: all), so a progress line counts only its own lag.
WITH names AS (
    SELECT name FROM {schema}.checkpoints
    -- Not the ended rows a reset leaves for names nobody held (owner ''): no reader.
    UNION SELECT name FROM {schema}.leases WHERE owner <> ''
    UNION SELECT name FROM {schema}.breakers
    UNION SELECT projection FROM {schema}.dead_letters
    UNION SELECT 'process:' || process FROM {schema}.process_instances
    UNION SELECT consumer FROM {schema}.bus_dead_letters
)
SELECT n.name,
       c.transaction_id::text AS checkpoint_transaction_id,
       c.position AS checkpoint_position,
       c.updated_at AS checkpoint_updated_at,
       l.owner AS lease_owner,
       l.epoch AS lease_epoch,
       l.expires_at AS lease_expires_at,
       (SELECT count(*) FROM {schema}.dead_letters d WHERE d.projection = n.name) AS dead_letters,
       (SELECT count(*) FROM {schema}.bus_dead_letters b WHERE b.consumer = n.name)
           AS bus_dead_letters,
       lag.events AS lag_events,
       first.oldest AS oldest_unapplied_at,
       b.state AS breaker_state,
       b.last_error AS breaker_last_error,
       b.changed_at AS breaker_changed_at
FROM (SELECT name FROM names WHERE $1::text IS NULL OR starts_with(name, $1)) n
LEFT JOIN {schema}.checkpoints c ON c.name = n.name
LEFT JOIN {schema}.leases l ON l.name = n.name
LEFT JOIN {schema}.breakers b ON b.name = n.name
-- Counted up to $2 rows (LAG_COUNT_LIMIT; NULL: all, for a progress line following one reader),
-- and the oldest found by one probe of the feed's
-- index: a reader with no checkpoint (a partition member's lease, a bus consumer) or a stale
-- one (a finished rebuild's) cost a scan of the whole events table per row, per call.
LEFT JOIN LATERAL (
    SELECT count(*) AS events
    FROM (SELECT 1
          FROM {schema}.events e
          WHERE (e.transaction_id, e.position)
                    > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          LIMIT $2) past
) lag ON true
LEFT JOIN LATERAL (
    SELECT e.recorded_at AS oldest
    FROM {schema}.events e
    WHERE (e.transaction_id, e.position)
              > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0))
      AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.transaction_id, e.position
    LIMIT 1
) first ON true
ORDER BY n.name
