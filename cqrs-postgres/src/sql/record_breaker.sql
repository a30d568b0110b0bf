-- Records projection $1's breaker in state $2, with error $3 (NULL: keep the error recorded
-- before while the breaker is not closed; a closed breaker keeps none).
INSERT INTO {schema}.breakers AS b (name, state, last_error, changed_at)
VALUES ($1, $2, CASE WHEN $2 = 'closed' THEN NULL ELSE $3 END, now())
ON CONFLICT (name) DO UPDATE
SET state = excluded.state,
    last_error = CASE WHEN excluded.state = 'closed' THEN NULL
                      ELSE coalesce(excluded.last_error, b.last_error) END,
    changed_at = now()
