-- A page of a consumer's letters in message order, after ($2, $3, $4) unless $2 is NULL.
-- Columns: topic, partition, offset, key, headers, payload, error, parked_at, request (every
-- bus_dead_letter_*.sql that reads letters returns these).
SELECT d.topic, d.partition, d."offset", d.key, d.headers, d.payload, d.error, d.parked_at,
       d.request
FROM {schema}.bus_dead_letters d
WHERE d.consumer = $1
  AND ($2::text IS NULL OR (d.topic, d.partition, d."offset") > ($2, $3, $4))
ORDER BY d.topic, d.partition, d."offset"
LIMIT $5
