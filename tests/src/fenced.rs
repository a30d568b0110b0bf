//! A PostgreSQL read model written through the lease fence: per stream, the last version
//! applied, kept in the same transaction as a check that the lease the batch is applied under
//! still holds ([`PgEventStore::lease_holds`]). It counts what a correct run never shows: an
//! event applied past a gap in its stream (out of order); and what at-least-once delivery may
//! show after a crash: an event applied again (a duplicate, which changes nothing).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use cqrs_core::projection::{Lease, Projection, ProjectionError};
use cqrs_core::RecordedEvent;
use cqrs_postgres::PgEventStore;
use sqlx::Row;

/// The read model, in the store's schema (tables `fenced_versions` and `fenced_counts`).
#[derive(Clone)]
pub struct FencedVersions {
    store: PgEventStore,
    name: String,
    /// How long each write's transaction stays open after its writes, before its commit.
    slow: std::time::Duration,
}

/// What the read model holds: each stream's last version, and the counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FencedState {
    /// Per stream, the last version applied.
    pub versions: BTreeMap<String, u64>,
    /// Events applied again.
    pub duplicates: u64,
    /// Events applied past a gap in their stream.
    pub out_of_order: u64,
    /// Batches refused because their lease had passed on.
    pub refused: u64,
}

impl FencedVersions {
    /// The read model `name` (its projection's name) in `store`'s schema.
    pub fn new(store: &PgEventStore, name: &str) -> Self {
        Self {
            store: store.clone(),
            name: name.to_owned(),
            slow: std::time::Duration::ZERO,
        }
    }

    /// The same read model, each write's transaction kept open `slow` longer (a large batch,
    /// a busy server).
    #[must_use]
    pub fn slow(mut self, slow: std::time::Duration) -> Self {
        self.slow = slow;
        self
    }

    fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.store.schema().as_str())
    }

    /// Creates its tables (idempotent).
    pub async fn create(&self) {
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {} (stream_id text PRIMARY KEY, version bigint NOT NULL)",
                self.table("fenced_versions")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, duplicates bigint NOT NULL, \
                 out_of_order bigint NOT NULL, refused bigint NOT NULL)",
                self.table("fenced_counts")
            ),
            format!(
                "INSERT INTO {} VALUES (1, 0, 0, 0) ON CONFLICT DO NOTHING",
                self.table("fenced_counts")
            ),
        ];
        for statement in statements {
            sqlx::query(&statement)
                .execute(self.store.pool())
                .await
                .expect("create the fenced read model");
        }
    }

    /// What it holds now.
    pub async fn state(&self) -> FencedState {
        let rows = sqlx::query(&format!(
            "SELECT stream_id, version FROM {}",
            self.table("fenced_versions")
        ))
        .fetch_all(self.store.pool())
        .await
        .expect("read the fenced read model");
        let versions = rows
            .iter()
            .map(|r| {
                let version: i64 = r.get(1);
                (r.get::<String, _>(0), u64::try_from(version).unwrap_or(0))
            })
            .collect();
        let counts = sqlx::query(&format!(
            "SELECT duplicates, out_of_order, refused FROM {} WHERE id = 1",
            self.table("fenced_counts")
        ))
        .fetch_one(self.store.pool())
        .await
        .expect("read the counters");
        let count = |i: usize| u64::try_from(counts.get::<i64, _>(i)).unwrap_or(0);
        FencedState {
            versions,
            duplicates: count(0),
            out_of_order: count(1),
            refused: count(2),
        }
    }

    async fn count_refusal(&self) {
        let _ = sqlx::query(&format!(
            "UPDATE {} SET refused = refused + 1 WHERE id = 1",
            self.table("fenced_counts")
        ))
        .execute(self.store.pool())
        .await;
    }

    /// Applies `events` in one transaction, committed only if `lease` still holds when it
    /// is checked, last: the check locks the lease row until the commit.
    async fn write(&self, events: &[RecordedEvent], lease: &Lease) -> Result<bool, sqlx::Error> {
        let mut tx = self.store.pool().begin().await?;
        let streams: Vec<String> = events.iter().map(|e| e.stream_id.to_string()).collect();
        let rows = sqlx::query(&format!(
            "SELECT stream_id, version FROM {} WHERE stream_id = ANY($1) FOR UPDATE",
            self.table("fenced_versions")
        ))
        .bind(&streams)
        .fetch_all(&mut *tx)
        .await?;
        let mut last: HashMap<String, i64> = rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect();
        let (mut duplicates, mut out_of_order) = (0i64, 0i64);
        for event in events {
            let version = i64::try_from(event.version.get()).unwrap_or(i64::MAX);
            let seen = last.entry(event.stream_id.to_string()).or_insert(0);
            if version <= *seen {
                duplicates += 1;
                continue;
            }
            if version > *seen + 1 {
                out_of_order += 1;
            }
            *seen = version;
        }
        let (ids, versions): (Vec<String>, Vec<i64>) = last.into_iter().unzip();
        sqlx::query(&format!(
            "INSERT INTO {} (stream_id, version) SELECT * FROM unnest($1::text[], $2::bigint[]) \
             ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            self.table("fenced_versions")
        ))
        .bind(&ids)
        .bind(&versions)
        .execute(&mut *tx)
        .await?;
        if duplicates > 0 || out_of_order > 0 {
            sqlx::query(&format!(
                "UPDATE {} SET duplicates = duplicates + $1, out_of_order = out_of_order + $2 \
                 WHERE id = 1",
                self.table("fenced_counts")
            ))
            .bind(duplicates)
            .bind(out_of_order)
            .execute(&mut *tx)
            .await?;
        }
        if !self.slow.is_zero() {
            sqlx::query("SELECT pg_sleep($1)")
                .bind(self.slow.as_secs_f64())
                .execute(&mut *tx)
                .await?;
        }
        let held = self
            .store
            .lease_holds(&mut tx, lease)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        if !held {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl Projection for FencedVersions {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Err(ProjectionError::Transient(
            "the fenced read model is written only under a lease".into(),
        ))
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        let Some(lease) = lease else {
            return self.apply(events).await;
        };
        // In a task of its own, which runs to its end if the runner drops this apply (its term
        // ended): sqlx 0.8's `begin()` is not cancel-safe.
        let (model, batch, held) = (self.clone(), events.to_vec(), lease.clone());
        let written = tokio::spawn(async move { model.write(&batch, &held).await })
            .await
            .map_err(|e| ProjectionError::Transient(e.into()))?;
        match written {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.count_refusal().await;
                Err(ProjectionError::LeaseLost(
                    format!("lease {} epoch {} no longer holds", lease.name, lease.epoch).into(),
                ))
            }
            Err(error) => Err(ProjectionError::Transient(error.into())),
        }
    }
}

/// The fold of the store: each stream's last version.
pub async fn last_versions(store: &PgEventStore) -> BTreeMap<String, u64> {
    crate::all_events(store)
        .await
        .into_iter()
        .map(|e| (e.stream_id.to_string(), e.version.get()))
        .fold(BTreeMap::new(), |mut m, (s, v)| {
            let last = m.entry(s).or_insert(0);
            *last = (*last).max(v);
            m
        })
}
