-- Marks (or unmarks, with NULL) every letter of one key.
UPDATE {schema}.bus_dead_letters
SET request = $4
WHERE consumer = $1 AND topic = $2 AND key = $3
