-- Takes up to $3 timeouts of process $1 due by $2 and removes them, earliest first; the caller
-- appends each one's fired event ("{TYPE}_timer-{timeout_id}", NoStream, event id = timeout id)
-- in the same transaction. $2 is the process clock, not now(): tests drive it.
-- Invariants: a concurrent firer skips the rows locked here and finds them gone after the
-- commit; a rollback (crash) leaves them due; a cancel waiting on the lock deletes nothing
-- (the fire happened first, and the instance finds it stale).
DELETE FROM {schema}.process_timeouts
WHERE (process, instance, key) IN (
    SELECT process, instance, key
    FROM {schema}.process_timeouts
    WHERE process = $1 AND due_at <= $2
    ORDER BY due_at, instance, key
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
RETURNING instance, key, timeout_id, due_at, payload
