UPDATE {schema}.dead_letters
SET request = $4
WHERE projection = $1 AND transaction_id = $2::text::xid8 AND position = $3
