-- Parks one message. Parking the same consumer and message twice keeps the first letter (a
-- consumer replaying after a crash parks again what it had parked).
INSERT INTO {schema}.bus_dead_letters
    (consumer, topic, partition, "offset", key, headers, payload, error, parked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (consumer, topic, partition, "offset") DO NOTHING
