-- The first letters of one key, in message order. Columns as in bus_dead_letter_page.sql.
SELECT d.topic, d.partition, d."offset", d.key, d.headers, d.payload, d.error, d.parked_at,
       d.request
FROM {schema}.bus_dead_letters d
WHERE d.consumer = $1 AND d.topic = $2 AND d.key = $3
ORDER BY d.partition, d."offset"
LIMIT $4
