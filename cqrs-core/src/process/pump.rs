//! The timer pump: while this worker leads, fires due timeouts into the feed. It decides
//! nothing; the fired events come back through the one subscription loop, which decides them.
//!
//! It loops: fire what is due by the process clock (again at once while batches come back
//! full), then sleep `min(timer_poll, next due - now)`, or until a local record schedules a
//! timeout (which may be sooner). Store errors back off with the retry policy's delays. Rows
//! survive a restart, and the store fires each once however many pumps overlap.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::dispatch::CommandDispatcher;
use super::drive::Driver;
use super::manager::ProcessManager;
use super::store::ProcessManagerStore;
use crate::Clock;

/// How the pump is woken early: it says until when (process clock) it sleeps, and a record
/// that schedules a timeout due before that wakes it.
#[derive(Default)]
pub(crate) struct Alarm {
    notify: Notify,
    /// When the pump's sleep ends; `None` while it is not sleeping (or not running).
    sleeping_until: Mutex<Option<OffsetDateTime>>,
}

impl Alarm {
    /// A record scheduled a timeout due at `due_at`: wakes the pump if it would sleep past it.
    /// A pump busy firing is woken too (one extra look), so nothing due is missed.
    pub(crate) fn scheduled(&self, due_at: OffsetDateTime) {
        let until = *self
            .sleeping_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if until.is_none_or(|until| due_at < until) {
            self.notify.notify_one();
        }
    }

    /// Sleeps for `pause`, which ends at `until` by the process clock, or until woken.
    async fn sleep(&self, pause: Duration, until: OffsetDateTime) {
        self.set(Some(until));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.notify.notified() => {}
        }
        self.set(None);
    }

    fn set(&self, until: Option<OffsetDateTime>) {
        *self
            .sleeping_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = until;
    }
}

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
        let span = tracing::info_span!("timer pump", process = P::TYPE);
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
        let pause = match fire(&driver).await {
            Ok(Some(pause)) => {
                failures = 0;
                pause
            }
            Ok(None) => {
                failures = 0;
                continue;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "firing timeouts failed"
                );
                options.retry.delay(failures).max(Duration::from_millis(1))
            }
        };
        let until = options.clock.now() + pause;
        driver.alarm.sleep(pause, until).await;
    }
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
    use std::sync::Arc;
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::Alarm;

    #[tokio::test]
    async fn only_a_timeout_due_before_the_sleep_ends_wakes_the_pump() {
        let alarm = Arc::new(Alarm::default());
        let now = OffsetDateTime::UNIX_EPOCH;
        let until = now + Duration::from_secs(60);
        let mut sleeper = tokio::spawn({
            let alarm = alarm.clone();
            async move { alarm.sleep(Duration::from_secs(60), until).await }
        });
        // Wait until the pump says it sleeps.
        while alarm
            .sleeping_until
            .lock()
            .map(|u| u.is_none())
            .unwrap_or(true)
        {
            tokio::task::yield_now().await;
        }
        alarm.scheduled(until + Duration::from_secs(1));
        let still = tokio::time::timeout(Duration::from_millis(50), &mut sleeper).await;
        assert!(still.is_err(), "a later timeout lets it sleep");
        alarm.scheduled(now + Duration::from_secs(5));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("an earlier timeout wakes it")
            .expect("the sleep ends");
    }

    #[tokio::test]
    async fn a_timeout_scheduled_while_the_pump_is_busy_wakes_its_next_sleep() {
        let alarm = Alarm::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        alarm.scheduled(now);
        tokio::time::timeout(
            Duration::from_secs(5),
            alarm.sleep(Duration::from_secs(60), now + Duration::from_secs(60)),
        )
        .await
        .expect("the stored wake-up ends the sleep at once");
    }
}
