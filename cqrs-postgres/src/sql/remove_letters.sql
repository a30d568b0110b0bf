DELETE FROM {schema}.dead_letters
WHERE projection = $1
  AND (transaction_id, position) IN (
      SELECT t::xid8, p FROM unnest($2::text[], $3::bigint[]) AS r (t, p)
  )
