//! Deadlines from durations a caller chose, which may be as long as `Duration::MAX` (a
//! natural way to say "never"): adding such a duration to an instant panics.

use std::time::Duration;

use tokio::time::Instant;

/// How far off a deadline is at most: about 30 years, as far as tokio's timers reach anyway.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The instant `wait` after `now`, or about 30 years after it when that is sooner.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_as_long_as_duration_allows_is_a_deadline_decades_away() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(after(now, Duration::MAX), now + FAR);
    }
}
