SELECT transaction_id::text AS transaction_id, position FROM {schema}.checkpoints WHERE name = $1
