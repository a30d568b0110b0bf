-- A consumer's letters with a request, in message order. Columns as in
-- bus_dead_letter_page.sql.
SELECT d.topic, d.partition, d."offset", d.key, d.headers, d.payload, d.error, d.parked_at,
       d.request
FROM {schema}.bus_dead_letters d
WHERE d.consumer = $1 AND d.request IS NOT NULL
ORDER BY d.topic, d.partition, d."offset"
LIMIT $2
