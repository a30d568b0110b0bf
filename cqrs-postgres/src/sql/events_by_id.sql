-- The events with these ids, in feed order. The first three columns are those every
-- `INSERT ... RETURNING` of an append gives back, so one decoder reads both (row.rs, `Landed`).
SELECT version, position, transaction_id::text AS transaction_id, stream_id, event_id
FROM {schema}.events
WHERE event_id = ANY ($1::uuid[])
ORDER BY transaction_id, position
