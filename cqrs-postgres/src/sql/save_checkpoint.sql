INSERT INTO {schema}.checkpoints (name, transaction_id, position)
VALUES ($1, $2::text::xid8, $3)
ON CONFLICT (name) DO UPDATE
    SET transaction_id = excluded.transaction_id,
        position = excluded.position,
        updated_at = now()
