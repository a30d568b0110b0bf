-- Migration 7: where each projection runner's circuit breaker is, as the runner recorded it
-- when it changed, so operators see a failing sink from outside the runner's process.
-- One row per projection (checkpoint name); the runner's own status stays the live truth.

CREATE TABLE {schema}.breakers (
    name        text        PRIMARY KEY,
    state       text        NOT NULL CONSTRAINT breakers_state_check
                            CHECK (state IN ('closed', 'open', 'half-open')),
    last_error  text,
    changed_at  timestamptz NOT NULL
);
