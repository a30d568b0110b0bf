-- Parks one message: whether it is parked now. The same message parked again for the same
-- consumer (a consumer replaying after a crash) keeps the first letter, and so counts as
-- parked; another message at the same place (offsets numbered from zero again: a topic
-- created again, another cluster) is not, and the first letter is kept. A letter at that place
-- this statement cannot see yet (another session's, committed while it waited) counts as
-- the same message.
WITH parked AS (
    INSERT INTO {schema}.bus_dead_letters
        (consumer, topic, partition, "offset", key, headers, payload, error, parked_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (consumer, topic, partition, "offset") DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM parked)
    OR NOT EXISTS (
        SELECT 1
        FROM {schema}.bus_dead_letters d
        WHERE d.consumer = $1 AND d.topic = $2 AND d.partition = $3 AND d."offset" = $4
          AND (d.key IS DISTINCT FROM $5 OR d.headers <> $6 OR d.payload IS DISTINCT FROM $7)
    )
