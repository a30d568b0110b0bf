-- Applies cqrs_xid_map (see xid_map.sql). Events take their new id. Every other stored position
-- (x, p) -- checkpoints, dead letters, command outcomes -- becomes the new position of the last
-- event at or before it in the old order (or the start of the feed if there is none): what lies
-- after it is the same set of events, in the same order, as before.
-- Returns how many rows of each changed.
WITH checkpoints AS (
    UPDATE {schema}.checkpoints c
    SET transaction_id = coalesce(m.new_xid, '0'::xid8),
        position = coalesce(m.position, 0)
    FROM {schema}.checkpoints c0
    LEFT JOIN LATERAL (SELECT new_xid, position FROM cqrs_xid_map
                       WHERE (old_xid, position) <= (c0.transaction_id, c0.position)
                       ORDER BY old_xid DESC, position DESC LIMIT 1) m ON true
    WHERE c.ctid = c0.ctid
    RETURNING 1
),
letters AS (
    UPDATE {schema}.dead_letters d
    SET transaction_id = coalesce(m.new_xid, '0'::xid8),
        position = coalesce(m.position, 0)
    FROM {schema}.dead_letters d0
    LEFT JOIN LATERAL (SELECT new_xid, position FROM cqrs_xid_map
                       WHERE (old_xid, position) <= (d0.transaction_id, d0.position)
                       ORDER BY old_xid DESC, position DESC LIMIT 1) m ON true
    WHERE d.ctid = d0.ctid
    RETURNING 1
),
commands AS (
    UPDATE {schema}.commands k
    SET transaction_id = coalesce(m.new_xid, '0'::xid8),
        position = coalesce(m.position, 0)
    FROM {schema}.commands k0
    LEFT JOIN LATERAL (SELECT new_xid, position FROM cqrs_xid_map
                       WHERE (old_xid, position) <= (k0.transaction_id, k0.position)
                       ORDER BY old_xid DESC, position DESC LIMIT 1) m ON true
    WHERE k.ctid = k0.ctid
    RETURNING 1
),
events AS (
    UPDATE {schema}.events e
    SET transaction_id = m.new_xid
    FROM cqrs_xid_map m
    WHERE e.transaction_id = m.old_xid AND e.position = m.position
    RETURNING 1
)
SELECT (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM checkpoints) AS checkpoints,
       (SELECT count(*) FROM letters) AS dead_letters,
       (SELECT count(*) FROM commands) AS commands
