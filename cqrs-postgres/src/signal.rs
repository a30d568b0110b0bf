//! [`PgFeedSignal`]: wakes projection runners when appends commit, through one `LISTEN`
//! connection per store shared by every subscriber.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{FeedSignal, FeedWaiter};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

/// The first pause before connecting again after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between two attempts to connect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Wakes projection runners when appends commit, through `LISTEN` on the store's channel.
///
/// All the subscriptions of one store share one connection: a background task, started by the
/// first subscriber, takes one connection from the store's pool, listens, and passes each
/// notification on to every subscriber (several notifications in quick succession may wake a
/// subscriber once). Each time it starts listening, the first time and after a failure, it
/// wakes every subscriber (notifications sent before it listened reached no one), and it gives
/// its connection back once no subscriber is left.
#[derive(Clone, Debug)]
pub struct PgFeedSignal {
    hub: Arc<Hub>,
}

impl PgFeedSignal {
    /// A signal sharing `hub`'s listener.
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// The shared listener of one store: the task's sender while the task runs.
#[derive(Debug)]
pub(crate) struct Hub {
    pool: PgPool,
    channel: String,
    /// Held strongly by the task only, so the task's end is seen here.
    sender: Mutex<Weak<watch::Sender<u64>>>,
}

impl Hub {
    pub(crate) fn new(pool: PgPool, channel: String) -> Self {
        Self {
            pool,
            channel,
            sender: Mutex::new(Weak::new()),
        }
    }

    /// A new receiver of wake-ups; starts the listening task if none runs. `None` outside a
    /// runtime, or once the pool is closed.
    fn receiver(&self) -> Option<watch::Receiver<u64>> {
        let mut sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = sender.upgrade() {
            return Some(running.subscribe());
        }
        if self.pool.is_closed() {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let started = Arc::new(watch::Sender::new(0));
        let receiver = started.subscribe();
        *sender = Arc::downgrade(&started);
        runtime.spawn(listen(started, self.pool.clone(), self.channel.clone()));
        Some(receiver)
    }
}

impl FeedSignal for PgFeedSignal {
    fn subscribe(&self) -> Box<dyn FeedWaiter> {
        Box::new(PgFeedWaiter {
            receiver: self.hub.receiver(),
            hub: Arc::clone(&self.hub),
        })
    }
}

struct PgFeedWaiter {
    hub: Arc<Hub>,
    receiver: Option<watch::Receiver<u64>>,
}

#[async_trait]
impl FeedWaiter for PgFeedWaiter {
    async fn wait(&mut self) {
        if self.receiver.is_none() {
            self.receiver = self.hub.receiver();
        }
        let Some(receiver) = self.receiver.as_mut() else {
            // The runner's poll interval bounds this wait.
            return std::future::pending().await;
        };
        if receiver.changed().await.is_err() {
            // The task ended (its runtime went away, or it stopped as the last subscriber
            // left): the next wait subscribes again. Returning early is allowed.
            self.receiver = None;
        }
    }
}

/// The listening task: until no subscriber is left, listens on `channel` and wakes everyone
/// at each notification, reconnecting after failures.
async fn listen(sender: Arc<watch::Sender<u64>>, pool: PgPool, channel: String) {
    let wake = || sender.send_modify(|n| *n = n.wrapping_add(1));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let connected = tokio::select! {
            () = sender.closed() => return,
            connected = connect(&pool, &channel) => connected,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%channel, %error, "no LISTEN connection; polling meanwhile");
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        // Appends may have committed while nobody listened: after a failure, and also before
        // the first connection (a subscriber's promise runs from when it subscribed).
        wake();
        loop {
            let received = tokio::select! {
                () = sender.closed() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(_)) => wake(),
                // The connection was lost and is back: notifications may have been lost.
                Ok(None) => wake(),
                Err(error) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%channel, %error, "LISTEN connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
