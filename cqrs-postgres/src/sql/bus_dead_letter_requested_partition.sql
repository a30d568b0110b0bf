-- A consumer's letters of one partition with a request, in offset order (the partial index
-- bus_dead_letters_requested serves it). Columns as in bus_dead_letter_page.sql.
SELECT d.topic, d.partition, d."offset", d.key, d.headers, d.payload, d.error, d.parked_at,
       d.request
FROM {schema}.bus_dead_letters d
WHERE d.consumer = $1 AND d.topic = $2 AND d.partition = $3 AND d.request IS NOT NULL
ORDER BY d."offset"
LIMIT $4
