//! Recording an input: the journal append, the timeout changes and the status row in one
//! statement (`sql/process_record.sql`), run by the append path so conflicts and duplicates
//! are told apart exactly as for [`AppendEvents::append`](cqrs_core::AppendEvents::append).

use std::collections::BTreeMap;

use cqrs_core::process::{in_utc, InstanceRow, ProcessRecord, TimeoutChange};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{Columns, PgQuery};
use crate::convert::to_i64;
use crate::{PgError, PgEventStore};

impl PgEventStore {
    /// [`ProcessStore::record`](cqrs_core::process::ProcessStore::record): one statement in
    /// autocommit, never grouped (the group statement writes events only).
    pub(crate) async fn record_pg(
        &self,
        process: &str,
        record: ProcessRecord,
    ) -> Result<cqrs_core::AppendOutcome, PgError> {
        let ProcessRecord {
            stream,
            expected,
            events,
            timeouts,
            status,
            ..
        } = record;
        let columns = Columns::new(events, self.max_payload_bytes, self.max_append_bytes)?;
        let extra = RecordColumns::new(process, status, timeouts)?;
        self.ensure_xids().await?;
        let outcome = self
            .call(async |conn| {
                (self.append_on(conn, false, &stream, expected, &columns, Some(&extra))).await
            })
            .await?;
        if !outcome.duplicate {
            self.notify_listeners();
        }
        Ok(outcome)
    }
}

/// What `sql/process_record.sql` binds after `append.sql`'s nine parameters: the instance,
/// its timeout changes netted into one upsert list and one removal list with disjoint keys
/// (a statement must not touch a row twice), and its status row.
pub(crate) struct RecordColumns {
    process: String,
    instance: String,
    set_keys: Vec<String>,
    set_ids: Vec<Uuid>,
    set_due: Vec<OffsetDateTime>,
    set_payloads: Vec<String>,
    cancel_all: bool,
    cut_keys: Vec<String>,
    /// `None`: remove whatever timeout the key holds.
    cut_ids: Vec<Option<Uuid>>,
    state: &'static str,
    correlation_id: Option<Uuid>,
    version: i64,
    last_input: String,
    pending_commands: i32,
    next_timeout_at: Option<OffsetDateTime>,
    started_at: OffsetDateTime,
    progressed_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
}

/// A scheduled timeout on its way to the statement.
struct Scheduled {
    timeout_id: Uuid,
    due_at: OffsetDateTime,
    payload: String,
}

impl RecordColumns {
    /// Nets `changes` in order (what applying them one by one would leave) and encodes them
    /// with the status row.
    pub(crate) fn new(
        process: &str,
        status: InstanceRow,
        changes: Vec<TimeoutChange>,
    ) -> Result<Self, PgError> {
        let mut cancel_all = false;
        let mut set: BTreeMap<String, Scheduled> = BTreeMap::new();
        let mut cut: BTreeMap<String, Vec<Option<Uuid>>> = BTreeMap::new();
        for change in changes {
            match change {
                TimeoutChange::Schedule {
                    key,
                    timeout_id,
                    due_at,
                    payload,
                } => {
                    let payload = serde_json::to_string(&payload).map_err(|source| {
                        cqrs_core::Error::Encode {
                            event_type: "timeout payload".to_owned(),
                            source,
                        }
                    })?;
                    cut.remove(&key);
                    let scheduled = Scheduled {
                        timeout_id,
                        due_at,
                        payload,
                    };
                    set.insert(key, scheduled);
                }
                TimeoutChange::Cancel { key, timeout_id } => match set.get(&key) {
                    // Scheduled in this record and cancelled again: whatever the key held
                    // before was replaced, so the key ends empty.
                    Some(scheduled) if scheduled.timeout_id == timeout_id => {
                        set.remove(&key);
                        cut.insert(key, vec![None]);
                    }
                    // The live timeout is the one scheduled here, not the one named.
                    Some(_) => {}
                    None if cancel_all => {}
                    None => cut.entry(key).or_default().push(Some(timeout_id)),
                },
                TimeoutChange::CancelAll => {
                    cancel_all = true;
                    set.clear();
                    cut.clear();
                }
                other => {
                    return Err(cqrs_core::Error::process(
                        process,
                        format!("this store does not know the timeout change {other:?}"),
                    )
                    .into())
                }
            }
        }
        let mut columns = Self {
            process: process.to_owned(),
            instance: status.instance,
            set_keys: Vec::with_capacity(set.len()),
            set_ids: Vec::with_capacity(set.len()),
            set_due: Vec::with_capacity(set.len()),
            set_payloads: Vec::with_capacity(set.len()),
            cancel_all,
            cut_keys: Vec::new(),
            cut_ids: Vec::new(),
            state: status.state.as_str(),
            correlation_id: status.correlation_id,
            version: to_i64("instance version", status.version.get())?,
            last_input: status.last_input,
            pending_commands: i32::try_from(status.pending_commands).map_err(|_| {
                PgError::OutOfRange {
                    what: "pending commands",
                    value: status.pending_commands.to_string(),
                }
            })?,
            next_timeout_at: status
                .next_timeout_at
                .map(|at| in_utc(process, at))
                .transpose()?,
            started_at: in_utc(process, status.started_at)?,
            progressed_at: in_utc(process, status.progressed_at)?,
            finished_at: status
                .finished_at
                .map(|at| in_utc(process, at))
                .transpose()?,
        };
        for (key, scheduled) in set {
            columns.set_keys.push(key);
            columns.set_ids.push(scheduled.timeout_id);
            columns.set_due.push(in_utc(process, scheduled.due_at)?);
            columns.set_payloads.push(scheduled.payload);
        }
        for (key, ids) in cut {
            for id in ids {
                columns.cut_keys.push(key.clone());
                columns.cut_ids.push(id);
            }
        }
        Ok(columns)
    }

    /// Binds `$10` to `$27` of `sql/process_record.sql`.
    pub(crate) fn bind<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.process)
            .bind(&self.instance)
            .bind(&self.set_keys)
            .bind(&self.set_ids)
            .bind(&self.set_due)
            .bind(&self.set_payloads)
            .bind(self.cancel_all)
            .bind(&self.cut_keys)
            .bind(&self.cut_ids)
            .bind(self.state)
            .bind(self.correlation_id)
            .bind(self.version)
            .bind(&self.last_input)
            .bind(self.pending_commands)
            .bind(self.next_timeout_at)
            .bind(self.started_at)
            .bind(self.progressed_at)
            .bind(self.finished_at)
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::process::{InstanceRow, TimeoutChange};
    use cqrs_core::Version;
    use serde_json::json;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::RecordColumns;

    fn schedule(key: &str, id: Uuid) -> TimeoutChange {
        TimeoutChange::Schedule {
            key: key.to_owned(),
            timeout_id: id,
            due_at: OffsetDateTime::UNIX_EPOCH,
            payload: json!(null),
        }
    }

    fn cancel(key: &str, id: Uuid) -> TimeoutChange {
        TimeoutChange::Cancel {
            key: key.to_owned(),
            timeout_id: id,
        }
    }

    fn net(changes: Vec<TimeoutChange>) -> RecordColumns {
        let row = InstanceRow::new("1", Version::new(2), OffsetDateTime::UNIX_EPOCH);
        RecordColumns::new("Order", row, changes).expect("encodes")
    }

    #[test]
    fn changes_net_to_disjoint_upserts_and_removals_in_order() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let netted = net(vec![
            cancel("a", a),
            schedule("a", b),
            schedule("b", b),
            cancel("b", b),
            schedule("c", c),
            cancel("c", a),
        ]);
        assert_eq!(netted.set_keys, ["a", "c"]);
        assert_eq!(netted.set_ids, [b, c]);
        assert_eq!(netted.cut_keys, ["b"], "b was scheduled then cancelled");
        assert_eq!(netted.cut_ids, [None]);
        assert!(!netted.cancel_all);

        let netted = net(vec![
            schedule("a", a),
            TimeoutChange::CancelAll,
            schedule("b", b),
        ]);
        assert!(netted.cancel_all);
        assert_eq!(
            netted.set_keys,
            ["b"],
            "a schedule after the cancel survives it"
        );
        assert!(netted.cut_keys.is_empty());
    }
}
