-- How many instances of process $1 are in each state, and how many running ones are stuck:
-- progressed before $3 (now minus stuck_after; NULL: none is) with no timeout due after $2 (now).
SELECT count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'running'
                          AND progressed_at < $3::timestamptz
                          AND (next_timeout_at IS NULL OR next_timeout_at <= $2::timestamptz)) AS stuck
FROM {schema}.process_instances
WHERE process = $1
