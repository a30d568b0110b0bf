-- The events with these ids, in feed order. The first three columns are those every
-- `INSERT ... RETURNING` of an append gives back, so one decoder reads both (row.rs, `Landed`).
-- The ids are read through a scalar subquery: a custom plan would see the array's length and
-- look cheaper than the generic one, so PostgreSQL planned every lookup again (72 us of
-- planning for 14 us of execution). The index still takes them (`event_id = ANY ($0)`).
-- The order names the table's column: a bare `transaction_id` here is the text one selected,
-- which sorts 10 before 9.
SELECT e.version, e.position, e.transaction_id::text AS transaction_id, e.stream_id, e.event_id
FROM {schema}.events e
WHERE e.event_id = ANY ((SELECT $1::uuid[])::uuid[])
ORDER BY e.transaction_id, e.position
