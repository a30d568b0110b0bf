SELECT stream_id, first_version, last_version, transaction_id::text AS transaction_id, position
FROM {schema}.commands
WHERE command_id = $1
