-- The keys a consumer holds back: each (topic, key) with a letter, once.
SELECT DISTINCT d.topic, d.key
FROM {schema}.bus_dead_letters d
WHERE d.consumer = $1 AND d.key IS NOT NULL
ORDER BY d.topic, d.key
