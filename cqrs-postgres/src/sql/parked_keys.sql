-- Each parked key of a projection once, by a walk of dead_letters_by_key that jumps from one
-- key to the next (one index probe per key, however many letters each key has).
WITH RECURSIVE keys (key) AS (
    (SELECT key FROM {schema}.dead_letters
     WHERE projection = $1 AND key IS NOT NULL
     ORDER BY key LIMIT 1)
    UNION ALL
    SELECT (SELECT d.key FROM {schema}.dead_letters d
            WHERE d.projection = $1 AND d.key IS NOT NULL AND d.key > keys.key
            ORDER BY d.key LIMIT 1)
    FROM keys
    WHERE keys.key IS NOT NULL
)
SELECT key FROM keys WHERE key IS NOT NULL
