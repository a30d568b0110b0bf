INSERT INTO {schema}.snapshots AS s (stream_id, version, schema_version, state)
VALUES ($1, $2, $3, $4::text::jsonb)
ON CONFLICT (stream_id) DO UPDATE
    SET version = excluded.version,
        schema_version = excluded.schema_version,
        state = excluded.state,
        taken_at = now()
    WHERE s.version < excluded.version
