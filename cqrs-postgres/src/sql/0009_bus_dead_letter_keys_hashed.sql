-- Migration 9: bus dead letters are found by key through a hash index. The btree of migration
-- 6 held each key whole, and a btree row holds at most about 2.7 KB: a message with a longer key
-- that did not compress (another client's, 4 KB of random bytes) could not be parked, and the
-- consumer stopped at it on every restart. A hash index keeps a 4-byte hash of any key. The
-- queries by key are equalities (one key's letters, requests on a key); the letters of a key
-- are few, sorted after the lookup. Runs again as it is (a test forgets this version to rerun
-- migration 8).
DROP INDEX IF EXISTS {schema}.bus_dead_letters_by_key;
CREATE INDEX IF NOT EXISTS bus_dead_letters_by_key_hash
    ON {schema}.bus_dead_letters USING hash (key)
    WHERE key IS NOT NULL;
