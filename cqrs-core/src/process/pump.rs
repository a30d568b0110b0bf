//! The timer pump: while this worker leads, fires due timeouts into the feed. It decides
//! nothing; the fired events come back through the one subscription loop, which decides them.
//!
//! It loops: fire what is due by the process clock (again at once while batches come back
//! full), then sleep `min(timer_poll, next due - now)`, or until a local record schedules a
//! timeout (which may be sooner). Store errors back off with the retry policy's delays, and so
//! does a panic in a firing (a store's or a clock's code may be a user's own): nothing awaits
//! the pump, so a panic that ended it would leave every later timeout unfired while the
//! worker looked healthy. Rows survive a restart, and the store fires each once however many
//! pumps overlap.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::task::JoinHandle;

use super::dispatch::CommandDispatcher;
use super::drive::Driver;
use super::manager::ProcessManager;
use super::store::ProcessManagerStore;
use crate::projection::runner::panic_message;
use crate::Clock;

/// A running pump; dropping it stops it.
pub(crate) struct Pump {
    task: JoinHandle<()>,
}

impl Pump {
    /// Starts the pump of `driver`'s process. Needs a tokio runtime.
    pub(crate) fn start<P, S, D>(driver: Arc<Driver<P, S, D>>) -> Self
    where
        P: ProcessManager,
        S: ProcessManagerStore,
        D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
    {
        // A root, not a child of the runner's span: that one lasts as long as the runner, and
        // its children show as orphans in a trace whose root is exported only at shutdown.
        let span = tracing::info_span!(parent: None, "timer pump", process = P::TYPE);
        Self {
            task: tokio::spawn(tracing::Instrument::instrument(run(driver), span)),
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run<P, S, D>(driver: Arc<Driver<P, S, D>>)
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    let options = &driver.options;
    let mut failures = 0u32;
    loop {
        let fired = unless_it_panics(async {
            let pause = fire(&driver).await?;
            Ok(pause.map(|pause| (pause, wake_at(options.clock.now(), pause))))
        });
        let (pause, until) = match fired.await {
            Ok(Some(sleep)) => {
                failures = 0;
                sleep
            }
            Ok(None) => {
                failures = 0;
                continue;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                crate::telemetry::metrics::record::timer_failed(P::TYPE);
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "firing timeouts failed"
                );
                // The backoff is waited out: no timeout a record schedules meanwhile wakes it
                // (every one would, while a persistent failure repeated at the rate of records).
                let pause = options.retry.delay(failures).max(Duration::from_millis(1));
                (pause, PrimitiveDateTime::MIN.assume_utc())
            }
        };
        driver.alarm.sleep(pause, until).await;
    }
}

/// Runs `work`, a panic in it as an error that carries its message (logged with the other
/// failures).
async fn unless_it_panics<T>(work: impl Future<Output = crate::Result<T>>) -> crate::Result<T> {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))).unwrap_or_else(|panic| {
            Poll::Ready(Err(crate::Error::backend(format!(
                "firing timeouts panicked: {}",
                panic_message(&*panic)
            ))))
        })
    })
    .await
}

/// When a sleep of `pause` from `now` ends: the latest time there is when that is past it (a
/// `timer_poll` of `Duration::MAX` overflowed, and the panic ended the pump for the term).
fn wake_at(now: OffsetDateTime, pause: Duration) -> OffsetDateTime {
    time::Duration::try_from(pause)
        .ok()
        .and_then(|pause| now.checked_add(pause))
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
}

/// Fires one batch of due timeouts: `None` when the batch came back full (fire again at
/// once), else how long to sleep.
async fn fire<P, S, D>(driver: &Driver<P, S, D>) -> crate::Result<Option<Duration>>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection> + 'static,
{
    let options = &driver.options;
    let fired = driver
        .store
        .fire_due(P::TYPE, options.clock.now(), options.timer_batch)
        .await?;
    crate::telemetry::metrics::record::timeouts_fired(P::TYPE, fired.len());
    if fired.len() >= options.timer_batch {
        return Ok(None);
    }
    let next = driver.store.next_due(P::TYPE).await?;
    let until_next = next.map_or(options.timer_poll, |due| {
        (due - options.clock.now())
            .try_into()
            .unwrap_or(Duration::ZERO)
    });
    // At least a millisecond: a due row another firer holds must not make this spin.
    Ok(Some(
        until_next
            .min(options.timer_poll)
            .max(Duration::from_millis(1)),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::{OffsetDateTime, PrimitiveDateTime};

    use super::wake_at;

    #[test]
    fn a_sleep_past_the_end_of_time_wakes_at_its_end_instead_of_panicking() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            wake_at(now, Duration::from_secs(5)),
            now + time::Duration::seconds(5)
        );
        let end = PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(wake_at(now, Duration::MAX), end);
        assert_eq!(wake_at(end, Duration::from_secs(1)), end);
    }
}
