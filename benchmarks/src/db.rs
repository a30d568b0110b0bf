//! The server: fresh databases per system, and what it runs on.

use std::future::Future;
use std::str::FromStr;

use anyhow::{Context as _, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

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
