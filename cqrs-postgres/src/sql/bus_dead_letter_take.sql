-- Removes the letters of the given messages (parallel arrays of topic, partition, offset).
DELETE FROM {schema}.bus_dead_letters d
USING unnest($2::text[], $3::integer[], $4::bigint[]) AS m(topic, partition, "offset")
WHERE d.consumer = $1 AND d.topic = m.topic AND d.partition = m.partition
  AND d."offset" = m."offset"
