-- Re-driving one letter failed: it stays, with the new error and without its request.
UPDATE {schema}.bus_dead_letters
SET error = $5, request = NULL
WHERE consumer = $1 AND topic = $2 AND partition = $3 AND "offset" = $4
