-- Migration 8: stream ids compare bytewise (COLLATE "C"), whatever the database's collation.
-- Every append inserts into the (stream_id, version) index, and every load and version check
-- descends it. Under a language collation (en_US.UTF-8 is the default of Docker's postgres
-- image and of many servers) each comparison on the way is a call to the C library's strcoll:
-- a bulk insert of rows shaped as the events ran 1.4x slower than bytewise (benchmarks/README.md,
-- "Stream ids compared bytewise"). Stream ids are identifiers. Equality was bytewise already (a
-- database's collation is deterministic, and deterministic collations call strings equal only
-- when their bytes are), nothing of ours orders by them, so only the order inside the indexes
-- changes, as migration 5 did for process instances.
--
-- A new collation rewrites no row, but PostgreSQL rebuilds the indexes on the column under the
-- table's exclusive lock: about 0.7 s per million events on the machine of the benchmarks, during
-- which appends and reads of the store wait.
ALTER TABLE {schema}.events ALTER COLUMN stream_id TYPE text COLLATE "C";
ALTER TABLE {schema}.snapshots ALTER COLUMN stream_id TYPE text COLLATE "C";
