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

    /// Sleeps for `pause`, which ends at `until` by the process clock, or until woken. A sleep
    /// cut off (the pump's task aborted when its term ends, nearly always while it sleeps)
    /// says it no longer sleeps, too: the next term's pump, busy firing, is then woken by any
    /// record, not only by one due before the old sleep's end.
    pub(crate) async fn sleep(&self, pause: Duration, until: OffsetDateTime) {
        self.set(Some(until));
        let _awake = Awake(self);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.notify.notified() => {}
        }
    }

    fn set(&self, until: Option<OffsetDateTime>) {
        *self
            .sleeping_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = until;
    }
}

/// Says the pump no longer sleeps when dropped: at the end of a sleep, or where it was cut off.
struct Awake<'a>(&'a Alarm);

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.0.set(None);
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

    #[tokio::test(start_paused = true)]
    async fn a_sleep_cut_off_leaves_the_next_pump_woken_by_any_timeout() {
        // A pump ends (its term ended: its task aborted) nearly always while it sleeps.
        let alarm = Alarm::default();
        let now = OffsetDateTime::UNIX_EPOCH;
        let cut_off = tokio::time::timeout(
            Duration::from_millis(10),
            alarm.sleep(Duration::from_secs(60), now + Duration::from_secs(60)),
        )
        .await;
        assert!(cut_off.is_err(), "the sleep was cut off");
        // The next term's pump is busy firing: a timeout scheduled meanwhile, due after the
        // old sleep's end, must still wake its next sleep.
        alarm.scheduled(now + Duration::from_secs(120));
        tokio::time::timeout(
            Duration::from_secs(5),
            alarm.sleep(Duration::from_secs(600), now + Duration::from_secs(600)),
        )
        .await
        .expect("the stored wake-up ends the sleep at once");
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
