-- Moves a checkpoint forward. Invariant: a checkpoint never moves back: a save at or before the
-- stored position (in feed order, (transaction_id, position)) writes nothing, so a late save
-- from a worker that was overtaken cannot undo later progress. Only reset_checkpoint.sql
-- starts a checkpoint over.
INSERT INTO {schema}.checkpoints AS c (name, transaction_id, position)
VALUES ($1, $2::text::xid8, $3)
ON CONFLICT (name) DO UPDATE
    SET transaction_id = excluded.transaction_id,
        position = excluded.position,
        updated_at = now()
    WHERE (c.transaction_id, c.position) < (excluded.transaction_id, excluded.position)
