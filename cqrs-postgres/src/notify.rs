//! Waking `LISTEN`ers after appends commit.
//!
//! A `NOTIFY` inside the appending transaction would be exact, but PostgreSQL serializes the
//! commits of notifying transactions on one lock, which defeats group commit and halved append
//! throughput in `pg-bench`. So autocommit appends only signal this in-process notifier; one
//! background task sends `pg_notify` from its own connection after they commit, coalescing
//! signals that arrive while it is busy. Appends inside a caller's transaction notify in the
//! statement, since only PostgreSQL knows when the caller commits.
//!
//! Under load the task would otherwise send a notification per append or two, each one waking
//! every listener: it keeps [`MIN_GAP`] between notifications, which costs an idle store
//! nothing (the first append after a quiet spell is announced at once) and a busy one a few
//! milliseconds of wake-up latency, while listeners are busy reading anyway. It uses its own
//! connection, so it never waits for, nor takes, a pool slot.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The least time between two notifications.
const MIN_GAP: Duration = Duration::from_millis(2);

/// Coalesces wake-up signals into `pg_notify` calls from a background task.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    pending: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// Asks for one `pg_notify(channel)` soon; starts the task on first use (or after the
    /// runtime that ran it went away).
    /// Its `pg_notify`, connection included, waits at most `answer_timeout`; then the
    /// connection is dropped, and the next signal makes another.
    pub(crate) fn signal(self: &Arc<Self>, pool: &PgPool, answer_timeout: Duration, channel: &str) {
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
            let channel = channel.to_owned();
            *task = Some(runtime.spawn(run(me, pool.clone(), answer_timeout, channel)));
        }
    }
}

async fn run(notifier: Weak<Notifier>, pool: PgPool, answer_timeout: Duration, channel: String) {
    let mut conn: Option<PgConnection> = None;
    loop {
        // Hold the notifier only while waiting a little, so the task ends once the store is gone.
        let Some(strong) = notifier.upgrade() else {
            break;
        };
        let woken = tokio::time::timeout(Duration::from_secs(1), strong.pending.notified())
            .await
            .is_ok();
        drop(strong);
        if !woken {
            continue;
        }
        if pool.is_closed() {
            break;
        }
        let notified = tokio::time::timeout(answer_timeout, notify(&mut conn, &pool, &channel));
        let error = match notified.await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {answer_timeout:?}")),
        };
        if let Some(error) = error {
            // Listeners fall back to polling; the events themselves are safe.
            tracing::warn!(%channel, %error, "could not notify listeners");
            conn = None;
        }
        tokio::time::sleep(MIN_GAP).await;
    }
    if let Some(conn) = conn {
        // Best effort: the server closes it anyway when the socket goes.
        let _ = conn.close().await;
    }
}

async fn notify(
    conn: &mut Option<PgConnection>,
    pool: &PgPool,
    channel: &str,
) -> Result<(), sqlx::Error> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(PgConnection::connect_with(&pool.connect_options()).await?),
    };
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}
