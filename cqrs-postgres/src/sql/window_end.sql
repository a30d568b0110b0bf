-- Where a filtered read's window ended: the $4-th row after ($1, $2) below the horizon $3 that
-- read_all.sql returned, or no row if fewer rows were there (the window was not full). Every
-- transaction below that horizon had ended when read_all.sql took its snapshot, so this later
-- statement sees exactly the rows that one scanned. An index-only walk of events_pkey.
SELECT e.transaction_id::text AS transaction_id, e.position
FROM {schema}.events e
WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2::bigint)
  AND e.transaction_id < $3::text::xid8
ORDER BY e.transaction_id, e.position
OFFSET $4 - 1
LIMIT 1
