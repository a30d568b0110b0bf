-- Starts a checkpoint over: the projection reads the feed from its beginning again. The only
-- statement that moves a checkpoint back (save_checkpoint.sql only moves it forward).
DELETE FROM {schema}.checkpoints WHERE name = $1
