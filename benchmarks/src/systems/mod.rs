//! The systems under test, each behind the same small interfaces: one deposit command, one
//! batch append, one pass over the global feed.

pub(crate) mod ours;
pub(crate) mod postgres_es;
pub(crate) mod raw;

use std::future::Future;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use cqrs_core::RetryPolicy;
use cqrs_postgres::EventJson;

/// How this run's events tables store payload and metadata (`--event-json`), set once by
/// `main` before any workload: every system of a run reads the same choice.
static EVENT_JSON: OnceLock<EventJson> = OnceLock::new();

/// Sets the run's [`event_json`]; a second call changes nothing.
pub(crate) fn set_event_json(event_json: EventJson) {
    let _first = EVENT_JSON.set(event_json);
}

/// How ours and the raw tables store payload and metadata in this run (`jsonb` unless set).
pub(crate) fn event_json() -> EventJson {
    EVENT_JSON.get().copied().unwrap_or_default()
}

/// One deposit command of a command workload.
#[derive(Clone, Debug)]
pub(crate) struct Command {
    /// The account's id; its stream is `account-{id}`.
    pub(crate) id: String,
    /// The stream version this command will have written when the commands of each stream run
    /// in order. Only the insert-only ceiling uses it: everyone else loads the stream.
    pub(crate) version: u64,
    /// How much to deposit.
    pub(crate) amount: u64,
}

/// Runs deposit commands: load the account, decide, append one event.
pub(crate) trait CommandSystem: Send + Sync + 'static {
    /// Runs `command`; returns how many concurrency conflicts it retried.
    fn deposit(&self, command: &Command) -> impl Future<Output = Result<u64>> + Send;
}

/// Appends batches of events to new streams.
pub(crate) trait BatchSystem: Send + Sync + 'static {
    /// Appends events of versions `1..=events` to the new stream `stream`; the event of version
    /// `v` deposits [`amount_of(v)`](amount_of).
    fn append_batch(&self, stream: &str, events: u64) -> impl Future<Output = Result<()>> + Send;
}

/// Reads the whole global feed from the start.
pub(crate) trait FeedSystem: Send + Sync + 'static {
    /// Reads every event, or with `category` every event of streams `{category}-...`, `batch`
    /// at a time; returns how many it read, after checking that positions only grow (and that
    /// every event read is of the category).
    fn read_feed(
        &self,
        batch: u64,
        category: Option<&'static str>,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// The deposit that the event of version `version` records, in the prepared streams.
pub(crate) fn amount_of(version: u64) -> u64 {
    1 + version % 7
}

/// The balance of a prepared stream of `events` events.
pub(crate) fn balance_of(events: u64) -> u64 {
    (1..=events).map(amount_of).sum()
}

/// What one optimistic attempt came to.
pub(crate) enum Attempt {
    /// It was written.
    Done,
    /// Another writer got there first; load again and retry.
    Conflict,
}

/// How every system retries a conflicting command: the backoff of `cqrs_core::Repository`'s
/// default, with room for 50 attempts, so that commands racing on a few streams
/// (`--hot-streams` below `--clients`) finish in every system rather than give up after five.
pub(crate) fn retry_policy() -> RetryPolicy {
    RetryPolicy::new(50)
}

/// Runs `attempt` until it is done, backing off between conflicts with [`retry_policy`].
/// Returns how many conflicts it retried.
pub(crate) async fn retrying<F, Fut>(mut attempt: F) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt>>,
{
    let policy = retry_policy();
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await? {
            Attempt::Done => return Ok(u64::from(tries - 1)),
            Attempt::Conflict if tries >= policy.max_attempts() => {
                bail!("still conflicting after {tries} attempts")
            }
            Attempt::Conflict => tokio::time::sleep(policy.delay(tries)).await,
        }
    }
}
