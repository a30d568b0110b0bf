-- A new stream's events by binary COPY (append/copy.rs encodes the rows): the columns an
-- append writes, in this order; position, transaction_id and recorded_at take their defaults.
COPY {schema}.events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
FROM STDIN (FORMAT binary)
