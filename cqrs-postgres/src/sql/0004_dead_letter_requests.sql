-- Migration 4: operators' requests on dead letters (retry, skip), and indexes so the runner
-- loads the parked keys (not every letter) and finds requests without scanning the letters.

ALTER TABLE {schema}.dead_letters
    ADD COLUMN request text CONSTRAINT dead_letters_request_check
        CHECK (request IN ('retry', 'skip'));

CREATE INDEX dead_letters_by_key
    ON {schema}.dead_letters (projection, key, transaction_id, position)
    WHERE key IS NOT NULL;

CREATE INDEX dead_letters_requested
    ON {schema}.dead_letters (projection, transaction_id, position)
    WHERE request IS NOT NULL;
