-- Migration 3: fenced leases. Each lease keeps an epoch (a fencing token) that grows by one
-- with every new holder and stays the same on renewal. Checkpoint saves made under a lease
-- name its epoch and are refused once the lease has passed on or expired
-- (save_checkpoint_fenced.sql). A released lease is ended, not deleted (release_lease.sql), so
-- an epoch is never handed out twice for one name.

ALTER TABLE {schema}.leases ADD COLUMN epoch bigint NOT NULL DEFAULT 1;
