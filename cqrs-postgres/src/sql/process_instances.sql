-- One page of process $1's status rows, by instance id (bytewise: the column is COLLATE "C").
-- $2: only this state (NULL: any). $3: only stuck ones: running, progressed before $5 (the
-- process clock's now minus stuck_after; NULL: nothing is stuck), and no timeout due after $4
-- (now). $6: only ids after this one (NULL: from the start). $7: at most this many. $8: only
-- this instance (NULL: any).
SELECT instance, state, correlation_id, version, last_input, pending_commands, next_timeout_at,
       started_at, progressed_at, finished_at
FROM {schema}.process_instances
WHERE process = $1
  AND ($2::text IS NULL OR state = $2::text)
  AND (NOT $3::boolean
       OR (state = 'running'
           AND progressed_at < $5::timestamptz
           AND (next_timeout_at IS NULL OR next_timeout_at <= $4::timestamptz)))
  AND ($6::text IS NULL OR instance > $6::text)
  AND ($8::text IS NULL OR instance = $8::text)
ORDER BY instance
LIMIT $7
