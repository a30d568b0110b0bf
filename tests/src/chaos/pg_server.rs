//! [`PgServer`]: a PostgreSQL of a test's own, started, restarted (fast shutdown) and stopped
//! with `scripts/postgres.sh`, and always stopped when the guard is dropped (even on a panic).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tokio::time::Instant;

use crate::script::{run, run_or_panic};

/// A private PostgreSQL cluster in its own work directory, on its own port.
#[derive(Debug)]
pub struct PgServer {
    workdir: PathBuf,
    port: u16,
}

impl PgServer {
    /// Starts a fresh cluster in `workdir` on `port` (durability off, as the tests' servers);
    /// panics with the script's output when it does not come up.
    pub async fn start(workdir: impl Into<PathBuf>, port: u16) -> Self {
        let server = Self {
            workdir: workdir.into(),
            port,
        };
        server.script("start").await;
        server
    }

    /// Its URL (trust authentication: no password).
    pub fn url(&self) -> String {
        format!("postgres://cqrs@127.0.0.1:{}/cqrs", self.port)
    }

    /// Restarts it with a fast shutdown (`pg_ctl -m fast`: sessions cut, open transactions
    /// rolled back) on the same data; returns how long the server was away, and when it was
    /// back (ready for connections).
    pub async fn restart_fast(&self) -> (Duration, Instant) {
        let started = Instant::now();
        self.script("restart").await;
        (started.elapsed(), Instant::now())
    }

    async fn script(&self, action: &'static str) {
        let what = format!("scripts/postgres.sh {action} on port {}", self.port);
        run_or_panic(self.command(action), what).await;
    }

    fn command(&self, action: &str) -> Command {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres.sh");
        let mut command = Command::new(script);
        command
            .arg(action)
            .env_remove("DATABASE_URL")
            .env("PG_WORKDIR", &self.workdir)
            .env("PG_PORT", self.port.to_string())
            .env("PG_FAST", "1")
            .env("PG_FRESH", if action == "start" { "1" } else { "0" });
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Err(failure) = run(self.command("stop")) {
            eprintln!(
                "could not stop the test's PostgreSQL on port {}: {failure}",
                self.port
            );
        }
    }
}
