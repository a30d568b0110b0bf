-- When the earliest live timeout of process $1 is due (NULL: none).
SELECT min(due_at) FROM {schema}.process_timeouts WHERE process = $1
