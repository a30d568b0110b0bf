//! [`ProcessStore`] for [`PgEventStore`]: process managers' durable timeouts and status rows
//! (tables of migration 5).
//!
//! `record.rs` writes an instance's journal events, timeout changes and status row in one
//! statement (`sql/process_record.sql`, through the append path), `timeouts.rs` fires due
//! timeouts (`sql/fire_timeouts.sql`, in one transaction with the fired events' appends), and
//! `status.rs` reads the rows back for the pump and for operators.

mod record;
mod status;
mod timeouts;

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    FiredTimeout, InstanceCounts, InstanceQuery, InstanceRow, ProcessRecord, ProcessStore,
    ScheduledTimeout,
};
use cqrs_core::{AppendOutcome, Error};
use time::OffsetDateTime;

use crate::PgEventStore;

pub(crate) use record::RecordColumns;

#[async_trait]
impl ProcessStore for PgEventStore {
    async fn record(&self, process: &str, record: ProcessRecord) -> Result<AppendOutcome, Error> {
        Ok(self.record_pg(process, record).await?)
    }

    async fn fire_due(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>, Error> {
        Ok(self.fire_due_pg(process, now, limit).await?)
    }

    async fn next_due(&self, process: &str) -> Result<Option<OffsetDateTime>, Error> {
        Ok(self.next_due_pg(process).await?)
    }

    async fn instance_timeouts(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Vec<ScheduledTimeout>, Error> {
        Ok(self.instance_timeouts_pg(process, instance).await?)
    }

    async fn instances(
        &self,
        process: &str,
        query: &InstanceQuery,
    ) -> Result<Vec<InstanceRow>, Error> {
        Ok(self.instances_pg(process, query, None).await?)
    }

    async fn instance(&self, process: &str, instance: &str) -> Result<Option<InstanceRow>, Error> {
        let query = InstanceQuery::all().limit(1);
        let mut rows = self.instances_pg(process, &query, Some(instance)).await?;
        Ok(rows.pop())
    }

    async fn instance_counts(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts, Error> {
        Ok(self.instance_counts_pg(process, now, stuck_after).await?)
    }
}
