//! Waking `LISTEN`ers after appends commit.
//!
//! A `NOTIFY` inside the appending transaction would be exact, but PostgreSQL serializes the
//! commits of notifying transactions on one lock, which defeats group commit and halved append
//! throughput in `pg-bench`. So autocommit appends only signal this in-process notifier; one
//! background task sends `pg_notify` from its own connection after they commit, coalescing
//! signals that arrive while it is busy. Appends inside a caller's transaction notify in the
//! statement, since only PostgreSQL knows when the caller commits.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Coalesces wake-up signals into `pg_notify` calls from a background task.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    pending: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// Asks for one `pg_notify(channel)` soon; starts the task on first use (or after the
    /// runtime that ran it went away).
    pub(crate) fn signal(self: &Arc<Self>, pool: &PgPool, channel: &str) {
        self.pending.notify_one();
        let mut task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let me = Arc::downgrade(self);
            *task = Some(runtime.spawn(run(me, pool.clone(), channel.to_owned())));
        }
    }
}

async fn run(notifier: Weak<Notifier>, pool: PgPool, channel: String) {
    loop {
        // Hold the notifier only while waiting a little, so the task ends once the store is gone.
        let Some(strong) = notifier.upgrade() else {
            return;
        };
        let woken = tokio::time::timeout(Duration::from_secs(1), strong.pending.notified())
            .await
            .is_ok();
        drop(strong);
        if !woken {
            continue;
        }
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            // Listeners fall back to polling; the events themselves are safe.
            tracing::warn!(%channel, %error, "could not notify listeners");
        }
    }
}
