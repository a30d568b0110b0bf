UPDATE {schema}.dead_letters
SET request = $3
WHERE projection = $1 AND key = $2
