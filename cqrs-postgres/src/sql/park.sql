INSERT INTO {schema}.dead_letters
    (projection, transaction_id, position, stream_id, version, event_type, key, error, parked_at)
VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (projection, transaction_id, position) DO NOTHING
