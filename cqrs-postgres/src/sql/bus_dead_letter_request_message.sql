-- Marks (or unmarks, with NULL) the letter of one message.
UPDATE {schema}.bus_dead_letters
SET request = $5
WHERE consumer = $1 AND topic = $2 AND partition = $3 AND "offset" = $4
