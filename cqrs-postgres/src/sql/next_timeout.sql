-- When the earliest live timeout of process $1 is due (NULL: none). Within the calendar a
-- client holds (years 1 to 9999): a due time set by hand to 'infinity' ("never") reads as the
-- latest there is, not as an error that would stop the pump looking. (GREATEST and LEAST skip
-- a NULL: the bounds apply only to a time there is.)
SELECT CASE WHEN t.due IS NOT NULL THEN
           LEAST(GREATEST(t.due, timestamptz '0001-01-01 00:00:00+00'),
                 timestamptz '9999-12-31 23:59:59+00')
       END
FROM (SELECT min(due_at) AS due FROM {schema}.process_timeouts WHERE process = $1) t
