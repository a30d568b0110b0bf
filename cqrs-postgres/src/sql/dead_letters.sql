-- A page of a projection's letters, in feed order. Columns in the order dead_letter.rs reads.
SELECT transaction_id::text, position, stream_id, version, event_type, key, error, parked_at,
       request
FROM {schema}.dead_letters
WHERE projection = $1 AND (transaction_id, position) > ($2::text::xid8, $3::bigint)
ORDER BY transaction_id, position
LIMIT $4
