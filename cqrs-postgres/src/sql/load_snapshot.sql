SELECT version, schema_version, state FROM {schema}.snapshots WHERE stream_id = $1
