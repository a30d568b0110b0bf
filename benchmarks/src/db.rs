//! The server: fresh databases per system, and what it runs on.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::latency::percentile;

/// The PostgreSQL server named by the URL; its own database is only used to create others.
pub struct Server {
    options: PgConnectOptions,
    prefix: &'static str,
    run_id: u32,
    idle_checks: bool,
}

/// What the server is.
pub struct ServerInfo {
    /// `SELECT version()`.
    pub version: String,
    /// Settings that move the figures: name and value.
    pub settings: Vec<(String, String)>,
}

/// How long a lone commit takes on the server: see [`Server::commit_latency`].
#[derive(Debug, Clone, Copy)]
pub struct CommitLatency {
    /// How many commits were timed.
    pub commits: usize,
    /// The median commit.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

impl fmt::Display for CommitLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.2} / p99 {:.2} ms over {} commits",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.commits
        )
    }
}

impl Server {
    /// The server of `url`; the databases it creates are named `{prefix}_{process id}_{label}`
    /// (`prefix` of lowercase letters, digits and `_`).
    pub fn new(url: &str, prefix: &'static str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).context("parsing the database URL")?;
        Ok(Self {
            options,
            prefix,
            run_id: std::process::id(),
            idle_checks: false,
        })
    }

    /// Every pool checks a connection before use only once it sat idle for
    /// [`cqrs_postgres::CHECK_IDLE_AFTER`] (`cqrs_postgres::pool_options`), where sqlx's
    /// default checks it with a round trip before every use.
    #[must_use]
    pub fn with_idle_checks(mut self, on: bool) -> Self {
        self.idle_checks = on;
        self
    }

    async fn admin(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.options)
            .await
            .context("connecting to the database URL")
    }

    /// The server's version and relevant settings.
    pub async fn info(&self) -> Result<ServerInfo> {
        let mut conn = self.admin().await?;
        let version: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&mut conn)
            .await?;
        let mut settings = Vec::new();
        for name in [
            "fsync",
            "synchronous_commit",
            "shared_buffers",
            "max_connections",
        ] {
            let value: String = sqlx::query_scalar("SELECT current_setting($1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
            settings.push((name.to_owned(), value));
        }
        // What text compares by in the databases each system gets (they copy `template1`):
        // under a language collation every comparison of a text key in an index is a call to
        // the collation's library. By name through `to_jsonb`: PostgreSQL 17 renamed
        // `daticulocale` to `datlocale` (and added the builtin provider), versions before 15
        // have no provider column (libc).
        let collation: String = sqlx::query_scalar(
            "SELECT CASE d ->> 'datlocprovider'
                    WHEN 'i' THEN coalesce(d ->> 'daticulocale', d ->> 'datlocale') || ' (ICU)'
                    WHEN 'b' THEN (d ->> 'datlocale') || ' (builtin)'
                    ELSE (d ->> 'datcollate') || ' (libc)' END
             FROM pg_database, to_jsonb(pg_database) d WHERE datname = 'template1'",
        )
        .fetch_one(&mut conn)
        .await?;
        settings.push(("new databases' collation".to_owned(), collation));
        conn.close().await?;
        Ok(ServerInfo { version, settings })
    }

    /// Times `commits` one-row inserts in autocommit, one after the other on one connection to
    /// a fresh database: each a round trip, a commit and its WAL flush. The floor under every
    /// figure that waits for commits (the group commit lane waits for one per group), and what
    /// moves most between machines and hours.
    pub async fn commit_latency(&self, commits: usize) -> Result<CommitLatency> {
        self.with_database("commit_probe", 1, |pool| async move {
            sqlx::raw_sql("CREATE TABLE probe (n bigint NOT NULL)")
                .execute(&pool)
                .await?;
            let mut conn = pool.acquire().await?;
            let mut times = Vec::with_capacity(commits);
            for n in 0..commits {
                let started = Instant::now();
                sqlx::query("INSERT INTO probe (n) VALUES ($1)")
                    .bind(i64::try_from(n)?)
                    .execute(&mut *conn)
                    .await?;
                times.push(started.elapsed());
            }
            times.sort_unstable();
            Ok(CommitLatency {
                commits,
                p50: percentile(&times, 500),
                p99: percentile(&times, 990),
            })
        })
        .await
        .context("timing lone commits")
    }

    /// Flushes every dirty page of the server to disk (`CHECKPOINT`), so that the next timed run
    /// does not pay for the writes of the one before it. It needs a superuser or
    /// `pg_checkpoint`; without one, says so on stderr and goes on.
    pub async fn checkpoint(&self) -> Result<()> {
        let mut admin = self.admin().await?;
        if let Err(error) = sqlx::raw_sql("CHECKPOINT").execute(&mut admin).await {
            eprintln!("  (no CHECKPOINT between systems: {error})");
        }
        admin.close().await?;
        Ok(())
    }

    /// Runs `f` with a pool of `pool_size` connections to a fresh database, then drops the
    /// database, whether `f` succeeded or not.
    pub async fn with_database<T, F, Fut>(&self, label: &str, pool_size: u32, f: F) -> Result<T>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let name = format!("{}_{}_{label}", self.prefix, self.run_id);
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let mut admin = self.admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;

        let outcome = async {
            let options = if self.idle_checks {
                cqrs_postgres::pool_options()
            } else {
                PgPoolOptions::new()
            };
            let pool = options
                .max_connections(pool_size)
                .connect_with(self.options.clone().database(&name))
                .await
                .with_context(|| format!("connecting to database {name}"))?;
            let outcome = f(pool.clone()).await;
            pool.close().await;
            outcome
        }
        .await;

        let dropped = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("dropping database {name}"));
        admin.close().await?;
        let value = outcome.with_context(|| format!("in database {name}"))?;
        dropped?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_latency_prints_in_milliseconds_with_how_many_commits_it_timed() {
        let latency = CommitLatency {
            commits: 300,
            p50: Duration::from_micros(420),
            p99: Duration::from_micros(1_570),
        };
        assert_eq!(
            latency.to_string(),
            "p50 0.42 / p99 1.57 ms over 300 commits"
        );
    }
}
