-- Migration 2: what projection workers share: leases (one active worker per projection) and
-- dead letters (events a projection parked).

CREATE TABLE {schema}.leases (
    name        text        NOT NULL,
    owner       text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (name)
);

CREATE TABLE {schema}.dead_letters (
    projection      text        NOT NULL,
    transaction_id  xid8        NOT NULL,
    position        bigint      NOT NULL,
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL,
    event_type      text        NOT NULL,
    key             text,
    error           text        NOT NULL,
    parked_at       timestamptz NOT NULL,
    CONSTRAINT dead_letters_pkey PRIMARY KEY (projection, transaction_id, position)
);
