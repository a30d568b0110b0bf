//! [`PgFeedSignal`]: wakes projection runners when appends commit, through one `LISTEN`
//! connection per store shared by every subscriber.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{FeedSignal, FeedWaiter};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgPool};
use tokio::sync::watch;

/// The first pause before connecting again after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between two attempts to connect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Wakes projection runners when appends commit, through `LISTEN` on the store's channel.
///
/// All the subscriptions of one store share one connection: a background task, started by the
/// first subscriber, opens one connection of its own (with the store's pool's connect
/// options, outside that pool, so that it never takes a connection calls need), listens, and
/// passes each notification on to every subscriber (several notifications in quick succession
/// may wake a subscriber once). Each time it starts listening, the first time and after a
/// failure, it wakes every subscriber (notifications sent before it listened reached no one).
/// It closes its connection once no subscriber is left, or once the store's pool is closed.
///
/// A connection that only listens sends nothing, so a network gone silent (a failover that
/// left the old address dead, a dropped NAT mapping) would leave it deaf for good, its
/// notifications lost. So whenever it has heard nothing for the store's
/// [answer timeout](crate::PgEventStore::with_answer_timeout), the task asks it a question;
/// with no answer within that timeout too, it drops the connection and listens anew on a new
/// one (waking every subscriber). Its `LISTEN` is bounded alike; connecting waits as long as the
/// store's pool would (its acquire timeout).
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
    /// The store's pool: its connect options, and its closing ends the task.
    pool: PgPool,
    channel: String,
    /// How long the connection may stay quiet before it is asked, and how long an answer or a
    /// `LISTEN` may take.
    answer_timeout: Duration,
    /// Held strongly by the task only, so the task's end is seen here.
    sender: Mutex<Weak<watch::Sender<u64>>>,
}

impl Hub {
    pub(crate) fn new(pool: PgPool, channel: String, answer_timeout: Duration) -> Self {
        Self {
            pool,
            channel,
            answer_timeout,
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
        runtime.spawn(listen(
            started,
            self.pool.clone(),
            self.channel.clone(),
            self.answer_timeout,
        ));
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

/// The listening task: until no subscriber is left or the store's pool is closed, listens on
/// `channel` and wakes everyone at each notification, listening anew on a new connection after
/// a failure, and after a quiet connection left a question unanswered.
async fn listen(sender: Arc<watch::Sender<u64>>, pool: PgPool, channel: String, answer: Duration) {
    let task = Listening {
        sender,
        pool,
        channel,
        answer,
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(ended) = task.unless_stopped(task.listen_once()).await else {
            return;
        };
        if ended.proved {
            backoff = FIRST_BACKOFF;
        }
        tracing::warn!(channel = %task.channel, error = %ended.why, "listening anew; runners poll meanwhile");
        if task
            .unless_stopped(tokio::time::sleep(backoff))
            .await
            .is_none()
        {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// What the listening task works with.
struct Listening {
    sender: Arc<watch::Sender<u64>>,
    /// The store's pool: its connect options and acquire timeout; its closing ends the task.
    pool: PgPool,
    channel: String,
    /// How long the connection may stay quiet before it is asked, and how long an answer or
    /// a `LISTEN` may take.
    answer: Duration,
}

/// Why a connection was given up, and whether it had proved itself first (a notification, or
/// an answered question), which resets the pause before the next one.
struct Ended {
    why: Lost,
    proved: bool,
}

impl Listening {
    /// `work`, unless the task is to stop first (no subscriber left, or the store's pool
    /// closed): then `None`.
    async fn unless_stopped<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            () = self.sender.closed() => None,
            () = self.pool.close_event() => None,
            done = work => Some(done),
        }
    }

    fn wake(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Listens on one new connection until it fails or stays silent.
    async fn listen_once(&self) -> Ended {
        let mut listener = match self.connect().await {
            Ok(listener) => listener,
            Err(error) => {
                return Ended {
                    why: Lost::NotListening(error),
                    proved: false,
                };
            }
        };
        // Appends may have committed while nobody listened: after a failure, and also before
        // the first connection (a subscriber's promise runs from when it subscribed).
        self.wake();
        let mut proved = false;
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                () = tokio::time::sleep(self.answer) => match self.ask(&mut listener).await {
                    Ok(()) => {
                        proved = true;
                        continue;
                    }
                    Err(error) => return Ended { why: Lost::Unanswered(error), proved },
                },
            };
            match received {
                Ok(Some(_)) => {
                    proved = true;
                    self.wake();
                }
                // The connection ended (sqlx reconnects no listener of ours by itself: a new
                // connection comes from `connect`, which wakes everyone once it listens).
                Ok(None) => {
                    return Ended {
                        why: Lost::Closed,
                        proved,
                    }
                }
                Err(error) => {
                    return Ended {
                        why: Lost::Failed(error),
                        proved,
                    }
                }
            }
        }
    }

    /// A listener on the channel, on a connection of its own: a pool of one, made for it, so
    /// that a connection given up on a silent network holds no connection of the store's
    /// pool (sqlx hands a dropped listener's connection back to its pool after an `UNLISTEN`,
    /// which waits for an answer as long as the operating system keeps the socket). Connecting
    /// waits as long as the store's pool would; the `LISTEN`, the answer timeout.
    async fn connect(&self) -> Result<PgListener, Silence> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.pool.options().get_acquire_timeout())
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(PgConnectOptions::clone(&self.pool.connect_options()));
        let mut listener = PgListener::connect_with(&own).await?;
        // A lost connection ends `try_recv` with `None`, and `listen_once` with it: reconnecting
        // inside `try_recv`, which a quiet period's question cancels, could listen again
        // without waking anyone.
        listener.eager_reconnect(false);
        bounded(self.answer, listener.listen(&self.channel)).await?;
        Ok(listener)
    }

    /// A question to a quiet connection, answered within the answer timeout or not at all:
    /// `LISTEN` on the channel again (which changes nothing, and keeps `pg_stat_activity`
    /// showing what the session is for).
    async fn ask(&self, listener: &mut PgListener) -> Result<(), Silence> {
        let listen = format!("LISTEN \"{}\"", self.channel.replace('"', "\"\""));
        bounded(self.answer, listener.execute(listen.as_str())).await?;
        Ok(())
    }
}

async fn bounded<T>(
    answer: Duration,
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, Silence> {
    match tokio::time::timeout(answer, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Silence::NoAnswer(answer)),
    }
}

/// A call on the listening connection that failed, or got no answer.
#[derive(Debug, thiserror::Error)]
enum Silence {
    #[error(transparent)]
    Failed(#[from] sqlx::Error),
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
}

/// Why the listening task gave a connection up.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("could not listen: {0}")]
    NotListening(Silence),
    #[error("the LISTEN connection was asked a question and gave no answer: {0}")]
    Unanswered(Silence),
    #[error("the LISTEN connection closed")]
    Closed,
    #[error("the LISTEN connection failed: {0}")]
    Failed(sqlx::Error),
}
