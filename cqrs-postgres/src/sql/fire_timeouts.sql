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
-- A due time before the calendar a client holds ('-infinity', "fire now", set by hand) fires as
-- due at its start: a row that could not be read would roll back every firing of the process.
RETURNING instance, key, timeout_id,
          GREATEST(due_at, timestamptz '0001-01-01 00:00:00+00') AS due_at, payload
