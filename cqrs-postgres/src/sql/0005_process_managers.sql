-- Migration 5: process managers. Durable timeouts (fired once, by whoever locks the row) and one
-- status row per instance, both written in the journal append's own statement
-- (process_record.sql). Instance ids sort bytewise (COLLATE "C"), as Rust compares them, so a
-- page's `after` cursor means the same everywhere and the primary key serves the order.

CREATE TABLE {schema}.process_timeouts (
    process         text        NOT NULL,
    instance        text        COLLATE "C" NOT NULL,
    key             text        COLLATE "C" NOT NULL,
    timeout_id      uuid        NOT NULL,
    due_at          timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    CONSTRAINT process_timeouts_pkey PRIMARY KEY (process, instance, key),
    CONSTRAINT process_timeouts_id_key UNIQUE (timeout_id)
);

-- The firers' and the pump's scan: a process's timeouts by due time.
CREATE INDEX process_timeouts_due ON {schema}.process_timeouts (process, due_at);

CREATE TABLE {schema}.process_instances (
    process         text        NOT NULL,
    instance        text        COLLATE "C" NOT NULL,
    state           text        NOT NULL CONSTRAINT process_instances_state_check
                                    CHECK (state IN ('running', 'completed', 'failed')),
    correlation_id  uuid,
    version         bigint      NOT NULL,
    -- For people: "event OrderPlaced", "timeout shipping", "rejected 3/1".
    last_input      text        NOT NULL,
    pending_commands integer    NOT NULL,
    next_timeout_at timestamptz,
    -- The process clock, not now(): tests move it.
    started_at      timestamptz NOT NULL,
    progressed_at   timestamptz NOT NULL,
    finished_at     timestamptz,
    CONSTRAINT process_instances_pkey PRIMARY KEY (process, instance)
);

-- Operators' lists and counts by state; stuck = running with an old progressed_at.
CREATE INDEX process_instances_by_state
    ON {schema}.process_instances (process, state, progressed_at);
