-- The raw ceilings' table with the constraints of cqrs.events: the same columns, feed key,
-- stream key and unique event id, so a raw insert maintains the same indexes as an append
-- (stream ids compared bytewise, as migration 8 makes ours).
CREATE TABLE raw_events (
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text        COLLATE "C" NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version int         NOT NULL,
    payload        {event_json} NOT NULL,
    metadata       {event_json} NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transaction_id, position),
    UNIQUE (stream_id, version),
    UNIQUE (event_id)
);
