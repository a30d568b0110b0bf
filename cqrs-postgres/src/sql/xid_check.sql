-- Are stored transaction ids ahead of this cluster's? Every row this statement can see was
-- written by a transaction that has ended (or by our own), and an ended transaction's id is below
-- the snapshot's xmax. A stored id at or above it (other than our own) was taken by another
-- cluster: the rows were copied in by pg_dump / restore or logical replication.
-- One backward probe of events_pkey, and the few checkpoint rows.
SELECT greatest(
           (SELECT e.transaction_id
            FROM {schema}.events e
            WHERE e.transaction_id IS DISTINCT FROM pg_current_xact_id_if_assigned()
            ORDER BY e.transaction_id DESC
            LIMIT 1),
           (SELECT max(c.transaction_id) FROM {schema}.checkpoints c)
       )::text AS stored,
       pg_snapshot_xmax(pg_current_snapshot())::text AS next
