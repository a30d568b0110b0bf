//! Firing timeouts (one transaction: `BEGIN`, the firing statement, the appends, `COMMIT`) cut
//! off midway, as the timer pump is when its worker is aborted or loses its lease, leaves no
//! transaction open on the pooled connection. sqlx 0.8's `begin()` is not cancel-safe on
//! PostgreSQL: cut off between sending `BEGIN` and reading its answer, it leaves the session in
//! a transaction sqlx does not know of, and the pool hands the connection on. Every later
//! "autocommit" statement on it then runs inside that transaction, holding its locks, invisible
//! to others, lost if it ever rolls back; its transaction id holds back the gap-safe feed of the
//! whole server. The saga test with worker crashes found it: five instances' journal records in
//! one transaction, and one step lost.

mod support;

use std::time::Duration;

use cqrs_core::process::ProcessStore;
use cqrs_core::testing::TestClock;

const ROUNDS: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_firing_cut_off_midway_leaves_no_transaction_open() {
    // One connection: every round's cut-off firing and check use the same session.
    let store = support::store_with(1).await;
    let now = TestClock::START;
    let mut stale = Vec::new();
    for round in 0..ROUNDS {
        let firer = store.clone();
        let firing = tokio::spawn(async move { firer.fire_due("p", now, 10).await });
        // From before `BEGIN` is sent to after `COMMIT` came back, in steps of 2 µs (a busy
        // wait: the timer's granularity is a millisecond). Before the fix, 1 to 3 rounds in
        // 1,000 left the session in a transaction.
        let delay = Duration::from_micros(round * 2);
        let started = std::time::Instant::now();
        while started.elapsed() < delay {
            std::hint::spin_loop();
        }
        firing.abort();
        let _ = firing.await;
        // Outside a transaction each statement has its own start time (`now()`); inside a
        // stale one, both read that transaction's start.
        let at = || async {
            let (at,): (time::OffsetDateTime,) = sqlx::query_as("SELECT now()")
                .fetch_one(store.pool())
                .await
                .expect("check the session");
            at
        };
        let first = at().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let own = at().await != first;
        if !own {
            stale.push(round);
            // Leave the session clean for the next round.
            sqlx::query("ROLLBACK")
                .execute(store.pool())
                .await
                .expect("rollback");
        }
    }
    assert!(
        stale.is_empty(),
        "{} of {ROUNDS} cut-off firings left the pooled session in a transaction (rounds {stale:?})",
        stale.len()
    );
}
