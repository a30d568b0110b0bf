-- Migration 6: messages a bus consumer could not handle, parked whole (key, headers, payload)
-- with their error, so an operator re-drives them with the same tools as projection letters
-- and they outlive the topic's retention. One row per consumer and message.

CREATE TABLE {schema}.bus_dead_letters (
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         bytea,
    -- [{"name": ..., "value": text} | {"name": ..., "bytes": [0-255...]} | {"name": ...}]:
    -- text when the value is UTF-8, so operators can query it; no value when it had none.
    headers     jsonb       NOT NULL,
    payload     bytea,
    error       text        NOT NULL,
    parked_at   timestamptz NOT NULL,
    request     text CONSTRAINT bus_dead_letters_request_check
                     CHECK (request IN ('retry', 'skip')),
    CONSTRAINT bus_dead_letters_pkey PRIMARY KEY (consumer, topic, partition, "offset")
);

-- The consumer loads its held-back keys, not its letters, when it is given a partition.
CREATE INDEX bus_dead_letters_by_key
    ON {schema}.bus_dead_letters (consumer, topic, key, partition, "offset")
    WHERE key IS NOT NULL;

CREATE INDEX bus_dead_letters_requested
    ON {schema}.bus_dead_letters (consumer, topic, partition, "offset")
    WHERE request IS NOT NULL;
