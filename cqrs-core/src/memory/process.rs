//! The in-memory store's [`ProcessStore`]: process managers' timeouts and status rows, kept in
//! the store's one `State`. `record` and `fire_due` each run under the one write lock, so each
//! is atomic like the PostgreSQL statement and transaction they mirror.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::process::{
    FiredTimeout, InstanceCounts, InstanceQuery, InstanceRow, InstanceState, ProcessRecord,
    ProcessStore, ScheduledTimeout, TimeoutChange, TimeoutFired,
};
use crate::validate::check_batch;
use crate::{AppendOutcome, Error, ExpectedVersion, NewEvent, Result, StreamId};

use super::{InMemoryEventStore, State};

/// A live timeout's row; its key is the map's `(process, instance, key)`.
#[derive(Debug)]
pub(super) struct TimeoutRow {
    timeout_id: Uuid,
    due_at: OffsetDateTime,
    payload: Value,
}

#[async_trait]
impl ProcessStore for InMemoryEventStore {
    async fn record(&self, process: &str, record: ProcessRecord) -> Result<AppendOutcome> {
        record.check_times(process)?;
        let ProcessRecord {
            stream,
            expected,
            events,
            timeouts,
            status,
            ..
        } = record;
        let command_id = self.check_append(&events)?;
        let mut state = self.write();
        if let Some(id) = state.foreign_timeout_id(process, &status.instance, &timeouts) {
            // Timeout ids are unique, as PostgreSQL's constraint keeps them.
            return Err(Error::process(
                process,
                format!("timeout id {id} is already live under another key"),
            ));
        }
        let outcome = state.append_checked(&stream, expected, events, command_id)?;
        if outcome.duplicate {
            // Recorded before: the first record's timeouts and status stand.
            return Ok(outcome);
        }
        state.change_timeouts(process, &status.instance, timeouts);
        state
            .instances
            .insert((process.to_owned(), status.instance.clone()), status);
        drop(state);
        self.notify_appended();
        Ok(outcome)
    }

    async fn fire_due(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>> {
        let mut state = self.write();
        let mut due: Vec<(OffsetDateTime, (String, String, String))> = state
            .timeouts
            .iter()
            .filter(|((p, _, _), row)| p == process && row.due_at <= now)
            .map(|(key, row)| (row.due_at, key.clone()))
            .collect();
        due.sort();
        due.truncate(limit);
        let mut fired = Vec::with_capacity(due.len());
        let mut result = Ok(());
        for (_, row_key) in due {
            match state.fire(process, row_key) {
                Ok(Some(one)) => fired.push(one),
                Ok(None) => {}
                Err(error) => {
                    // Each fire is atomic on its own; the ones before this stay fired.
                    result = Err(error);
                    break;
                }
            }
        }
        drop(state);
        if !fired.is_empty() {
            self.notify_appended();
        }
        result.map(|()| fired)
    }

    async fn next_due(&self, process: &str) -> Result<Option<OffsetDateTime>> {
        Ok(self
            .read()
            .timeouts
            .iter()
            .filter(|((p, _, _), _)| p == process)
            .map(|(_, row)| row.due_at)
            .min())
    }

    async fn instance_timeouts(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Vec<ScheduledTimeout>> {
        Ok(self
            .read()
            .timeouts
            .iter()
            .filter(|((p, i, _), _)| p == process && i == instance)
            .map(|((_, _, key), row)| {
                ScheduledTimeout::new(key.clone(), row.timeout_id, row.due_at, row.payload.clone())
            })
            .collect())
    }

    async fn instances(&self, process: &str, query: &InstanceQuery) -> Result<Vec<InstanceRow>> {
        Ok(self
            .read()
            .instances
            .iter()
            .filter(|((p, _), row)| p == process && query.matches(row))
            .take(query.limit)
            .map(|(_, row)| row.clone())
            .collect())
    }

    async fn instance(&self, process: &str, instance: &str) -> Result<Option<InstanceRow>> {
        Ok(self
            .read()
            .instances
            .get(&(process.to_owned(), instance.to_owned()))
            .cloned())
    }

    async fn instance_counts(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts> {
        let state = self.read();
        let mut counts = InstanceCounts::default();
        for ((_, _), row) in state.instances.iter().filter(|((p, _), _)| p == process) {
            match row.state {
                InstanceState::Running => counts.running += 1,
                InstanceState::Completed => counts.completed += 1,
                InstanceState::Failed => counts.failed += 1,
            }
            if row.is_stuck(now, stuck_after) {
                counts.stuck += 1;
            }
        }
        Ok(counts)
    }
}

impl State {
    /// A timeout id `changes` schedules that is live under another (process, instance, key).
    fn foreign_timeout_id(
        &self,
        process: &str,
        instance: &str,
        changes: &[TimeoutChange],
    ) -> Option<Uuid> {
        changes.iter().find_map(|change| {
            let TimeoutChange::Schedule {
                key, timeout_id, ..
            } = change
            else {
                return None;
            };
            self.timeouts
                .iter()
                .any(|((p, i, k), row)| {
                    row.timeout_id == *timeout_id && (p != process || i != instance || k != key)
                })
                .then_some(*timeout_id)
        })
    }

    /// Applies one record's timeout changes (netted per key by the caller).
    fn change_timeouts(&mut self, process: &str, instance: &str, changes: Vec<TimeoutChange>) {
        let row_key = |key: String| (process.to_owned(), instance.to_owned(), key);
        for change in changes {
            match change {
                TimeoutChange::Schedule {
                    key,
                    timeout_id,
                    due_at,
                    payload,
                } => {
                    let row = TimeoutRow {
                        timeout_id,
                        due_at,
                        payload,
                    };
                    self.timeouts.insert(row_key(key), row);
                }
                TimeoutChange::Cancel { key, timeout_id } => {
                    let row_key = row_key(key);
                    if self
                        .timeouts
                        .get(&row_key)
                        .is_some_and(|row| row.timeout_id == timeout_id)
                    {
                        self.timeouts.remove(&row_key);
                    }
                }
                TimeoutChange::CancelAll => self
                    .timeouts
                    .retain(|(p, i, _), _| !(p == process && i == instance)),
            }
        }
    }

    /// Fires one live timeout: appends its [`TimeoutFired`] event to its own stream, then
    /// removes its row (`None` if there is no row). Nothing changes if the append fails.
    fn fire(
        &mut self,
        process: &str,
        row_key: (String, String, String),
    ) -> Result<Option<FiredTimeout>> {
        let Some(row) = self.timeouts.get(&row_key) else {
            return Ok(None);
        };
        let (_, instance, key) = &row_key;
        let fired = TimeoutFired {
            instance: instance.clone(),
            key: key.clone(),
            timeout_id: row.timeout_id,
            due_at: row.due_at,
            payload: row.payload.clone(),
        };
        let stream: StreamId = TimeoutFired::stream(process, fired.timeout_id)?;
        let events: Vec<NewEvent> = vec![fired.to_event()?];
        // Its payload was checked when it was scheduled: the limit does not refuse it (the
        // fired event's own few fields past a payload near the limit would hold every timeout
        // of the process behind it).
        check_batch(&events, usize::MAX)?;
        let outcome = self.append_checked(&stream, ExpectedVersion::NoStream, events, None)?;
        self.timeouts.remove(&row_key);
        let TimeoutFired {
            instance,
            key,
            timeout_id,
            due_at,
            ..
        } = fired;
        Ok(Some(FiredTimeout::new(
            instance,
            key,
            timeout_id,
            due_at,
            outcome.position,
        )))
    }
}
