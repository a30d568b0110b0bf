-- A page of a projection's letters, in feed order. Columns in the order dead_letter.rs reads.
-- The ORDER BY names the table's columns: a bare `transaction_id` would be the output
-- column, text, whose order is not the feed's ('10' < '9').
SELECT d.transaction_id::text, d.position, d.stream_id, d.version, d.event_type, d.key, d.error,
       d.parked_at, d.request
FROM {schema}.dead_letters d
WHERE d.projection = $1 AND (d.transaction_id, d.position) > ($2::text::xid8, $3::bigint)
ORDER BY d.transaction_id, d.position
LIMIT $4
