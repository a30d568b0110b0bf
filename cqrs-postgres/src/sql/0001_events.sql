-- Migration 1: events, commands, snapshots, checkpoints.
-- {schema} is replaced by the store's validated, quoted schema name.

CREATE TABLE {schema}.events (
    -- The global feed is ordered by (transaction_id, position): a reader only reads rows whose
    -- transaction is older than every transaction still open, so a late commit is never passed.
    position        bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    -- Payload and metadata: jsonb, or json when the store is configured so (event_json.rs).
    payload         {event_json} NOT NULL,
    metadata        {event_json} NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_version_positive CHECK (version > 0)
);

-- Idempotent commands: one row per command id, written in the append's own statement.
CREATE TABLE {schema}.commands (
    command_id      uuid        NOT NULL,
    stream_id       text        NOT NULL,
    first_version   bigint      NOT NULL,
    last_version    bigint      NOT NULL,
    transaction_id  xid8        NOT NULL,
    position        bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commands_pkey PRIMARY KEY (command_id)
);

CREATE TABLE {schema}.snapshots (
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL,
    schema_version  integer     NOT NULL,
    state           jsonb       NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE {schema}.checkpoints (
    name            text        NOT NULL,
    transaction_id  xid8        NOT NULL,
    position        bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkpoints_pkey PRIMARY KEY (name)
);
