-- append_known.sql for several events: schema.rs puts that statement's INSERT (its checks
-- included) into a CTE named `inserted`, returning version and position, ahead of this SELECT.
-- One summary row comes back however many events, so a batch costs no row per event on the
-- wire. A NULL position means the check failed and nothing was written; append.sql then says
-- why. (All the rows share one transaction, so the last in feed order is the one of the highest
-- position.)
SELECT min(version) AS first_version, max(version) AS last_version, max(position) AS position,
       CASE WHEN count(*) > 0 THEN pg_current_xact_id()::text END AS transaction_id
FROM inserted
