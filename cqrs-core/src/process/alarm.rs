//! [`Alarm`]: how a record wakes the timer pump early. The drive rings it when a record
//! schedules a timeout; the pump sleeps on it. A leaf both share, so neither imports the other.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

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
    pub(crate) async fn sleep(&self, pause: Duration, until: OffsetDateTime) {
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
