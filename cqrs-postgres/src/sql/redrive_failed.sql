UPDATE {schema}.dead_letters
SET error = $4, request = NULL
WHERE projection = $1 AND transaction_id = $2::text::xid8 AND position = $3
