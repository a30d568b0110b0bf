-- The common append: the writer knows the stream's version ($7; 0 for a new stream) and has no
-- command id to record. One plain INSERT, about as cheap as a raw one:
-- - versions $7 + 1.. are claimed through the unique (stream_id, version) index, so a writer
--   that is behind fails on it (told apart by constraint name: a Conflict);
-- - the EXISTS check makes sure the stream is not behind $7 either (that would leave a gap) and
--   that its last event was written by a transaction no younger than ours (see append.sql).
-- No row back means that check failed; append.sql then says why. Several events take
-- append_known_batch.sql: this INSERT (schema.rs copies it there) with one summary row back
-- instead of a row per event; one event takes this, which skips the CTE and its aggregate.
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, payload, metadata)
SELECT $1, $7 + e.ord, e.event_id, e.event_type, e.schema_version,
       e.payload::{event_json}, e.metadata::{event_json}
FROM unnest($2::uuid[], $3::text[], $4::integer[], $5::text[], $6::text[])
         WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)
WHERE $7::bigint = 0
   OR EXISTS (SELECT FROM {schema}.events
              WHERE stream_id = $1 AND version = $7 AND transaction_id <= pg_current_xact_id())
RETURNING version AS first_version, version AS last_version, position,
          transaction_id::text AS transaction_id
