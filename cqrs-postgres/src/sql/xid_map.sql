-- The repair's mapping, old (transaction_id, position) -> new transaction_id, for every event.
-- Walking the feed in order, a new id starts wherever the position does not rise (goes down, or
-- repeats under another transaction id: logical replication copies no sequence value, so an
-- event appended on the target can take a position a copied one holds); within a run the
-- positions rise, so ordering a run's events by position alone is their feed order. Runs get the
-- ids 1, 2, 3 ...: (new id, position) sorts exactly as (old id, position) did, with as few ids as
-- that takes (usually a handful: positions go down only where transactions committed out of order,
-- and repeat only after a copy that did not move the sequence).
CREATE TEMPORARY TABLE cqrs_xid_map ON COMMIT DROP AS
SELECT o.transaction_id AS old_xid,
       o.position,
       (1 + count(*) FILTER (WHERE o.position <= o.previous)
                OVER (ORDER BY o.transaction_id, o.position))::text::xid8 AS new_xid
FROM (SELECT transaction_id, position,
             lag(position) OVER (ORDER BY transaction_id, position) AS previous
      FROM {schema}.events) o;
CREATE INDEX ON cqrs_xid_map (old_xid, position);
ANALYZE cqrs_xid_map
