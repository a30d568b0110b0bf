//! Leases: one owner at a time, growing epochs, fenced checkpoint saves.

use std::time::Duration;

use crate::projection::Lease;
use crate::{FencedSave, Position, Version};

use super::{stream, ConformanceStore};

/// Waits until `owner` takes lease `name` (it expires meanwhile), at most ten seconds.
async fn acquire_when_expired<S: ConformanceStore>(
    store: &S,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> Lease {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(lease) = store.try_acquire(name, owner, ttl).await.expect("acquire") {
            return lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired lease passes on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A lease admits one owner at a time, renews for its owner, and passes on when released or
/// expired.
pub async fn leases_admit_one_owner_at_a_time<S: ConformanceStore>(store: S) {
    let long = Duration::from_secs(30);
    let a = store.try_acquire("p", "a", long).await.expect("acquire");
    let a = a.expect("free");
    assert_eq!((a.name.as_str(), a.owner.as_str()), ("p", "a"));
    assert!(
        a.valid_for > Duration::from_secs(29) && a.valid_for <= long,
        "valid for the time asked: {a:?}"
    );
    assert_eq!(store.try_acquire("p", "b", long).await.expect("held"), None);
    assert!(store
        .try_acquire("p", "a", long)
        .await
        .expect("renew")
        .is_some());
    let q = store.try_acquire("q", "b", long).await.expect("another");
    let q = q.expect("another lease");
    // b holds q, not p: releasing "p" as b (in q's epoch) leaves a's lease alone.
    store
        .release(&Lease::new("p", "b", q.epoch, long))
        .await
        .expect("not b's to release");
    assert_eq!(store.try_acquire("p", "b", long).await.expect("a's"), None);
    store.release(&a).await.expect("release");
    assert!(store
        .try_acquire("p", "b", crate::backend::MIN_LEASE_TTL)
        .await
        .expect("released")
        .is_some());
    acquire_when_expired(&store, "p", "a", long).await;
    assert_eq!(
        store.try_acquire("p", "b", long).await.expect("a's again"),
        None
    );
}

/// The epoch grows with each new holder (also the same owner after expiry or release) and
/// stays on renewal.
pub async fn lease_epochs_grow_with_each_new_holder<S: ConformanceStore>(store: S) {
    let (short, long) = (crate::backend::MIN_LEASE_TTL, Duration::from_secs(30));
    // Long enough to be renewed however slow the machine: a short one could expire first.
    let first = store.try_acquire("p", "a", long).await.expect("acquire");
    let first = first.expect("free");
    let renewed = store.try_acquire("p", "a", long).await.expect("renew");
    let renewed = renewed.expect("a's");
    assert_eq!(renewed.epoch, first.epoch, "a renewal keeps the epoch");
    store.release(&renewed).await.expect("release");
    let b = acquire_when_expired(&store, "p", "b", short).await;
    assert!(b.epoch > first.epoch, "{b:?} after {first:?}");
    let a_again = acquire_when_expired(&store, "p", "a", long).await;
    assert!(
        a_again.epoch > b.epoch,
        "the same owner after expiry is a new holder: {a_again:?} after {b:?}"
    );
    store.release(&b).await.expect("b's time is over");
    let renewed = store.try_acquire("p", "a", long).await.expect("renew");
    assert_eq!(
        renewed.map(|l| l.epoch),
        Some(a_again.epoch),
        "a stale release changes nothing"
    );
    let other = store.try_acquire("q", "a", long).await.expect("acquire");
    assert!(other.is_some(), "leases are per name");
}

/// A save under a lease that expired or passed on is refused and writes nothing; the holder's
/// saves go through.
pub async fn a_stale_epoch_cannot_save<S: ConformanceStore>(store: S) {
    let short = crate::backend::MIN_LEASE_TTL;
    let (p1, p2, p3) = (
        Position::from_parts(1, 1),
        Position::from_parts(1, 2),
        Position::from_parts(1, 3),
    );
    // A save while the lease holds (long, so it holds however slow the machine), then the
    // lease renewed short (the same epoch) to let it expire.
    let old = store.try_acquire("p", "a", Duration::from_secs(30)).await;
    let old = old.expect("acquire").expect("free");
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p1, &old)
            .await
            .expect("save"),
        FencedSave::Saved
    );
    let renewed = store.try_acquire("p", "a", short).await.expect("renew");
    assert_eq!(renewed.map(|l| l.epoch), Some(old.epoch), "a renewal");
    let new = acquire_when_expired(&store, "p", "b", Duration::from_secs(30)).await;
    assert!(new.epoch > old.epoch);
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p3, &old)
            .await
            .expect("save"),
        FencedSave::LeaseLost,
        "the old holder is fenced off"
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p1));
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p2, &new)
            .await
            .expect("save"),
        FencedSave::Saved
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p2));

    // Expired with no one after it: refused too (the store's clock decides).
    let expired = store.try_acquire("q", "a", short).await.expect("acquire");
    let expired = expired.expect("free");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Saves of the same position change nothing while the lease holds, and are refused once
    // it expired (no reset in between: a reset would end the lease itself).
    while store
        .save_checkpoint_fenced("q", p1, &expired)
        .await
        .expect("save")
        == FencedSave::Saved
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired lease stops admitting saves"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store
            .save_checkpoint_fenced("q", p2, &expired)
            .await
            .expect("save"),
        FencedSave::LeaseLost
    );
    let saved = store.load_checkpoint("q").await.expect("load");
    assert!(
        saved.is_none_or(|saved| saved <= p1),
        "nothing past what was saved while the lease held: {saved:?}"
    );

    // A lease of another name fences nothing here.
    let other = store.try_acquire("r", "a", Duration::from_secs(30)).await;
    let other = other.expect("acquire").expect("free");
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p3, &other)
            .await
            .expect("save"),
        FencedSave::LeaseLost
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p2));
}

/// A reset starts a projection over: its checkpoint and its dead letters are gone, and whoever
/// held its lease is fenced off (its saves are refused, and renewing starts a new term), so no
/// worker goes on from the position it held in memory. Other projections keep theirs.
pub async fn a_reset_fences_the_holder_and_drops_the_dead_letters<S: ConformanceStore>(store: S) {
    let ttl = Duration::from_secs(30);
    let held = store.try_acquire("p", "a", ttl).await.expect("acquire");
    let held = held.expect("free");
    let other = store.try_acquire("q", "a", ttl).await.expect("acquire");
    let other = other.expect("free");
    let (p1, p2) = (Position::from_parts(3, 1), Position::from_parts(4, 1));
    for (name, lease) in [("p", &held), ("q", &other)] {
        let saved = store.save_checkpoint_fenced(name, p1, lease).await;
        assert_eq!(saved.expect("save"), FencedSave::Saved);
        let letter = crate::backend::dead_letter(
            name,
            Position::from_parts(2, 7),
            stream("reset-1"),
            Version::new(1),
            "Broken",
            Some("doc-1".to_owned()),
            "bad payload",
            time::OffsetDateTime::now_utc(),
        );
        store.park(letter).await.expect("park");
    }

    store.reset_checkpoint("p").await.expect("reset");

    assert_eq!(store.load_checkpoint("p").await.expect("load"), None);
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p2, &held)
            .await
            .expect("save"),
        FencedSave::LeaseLost,
        "the holder's term ended with the reset"
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), None);
    let renewed = store.try_acquire("p", "a", ttl).await.expect("acquire");
    let renewed = renewed.expect("the holder takes the lease again");
    assert!(
        renewed.epoch > held.epoch,
        "a new term, not a renewal: {renewed:?} after {held:?}"
    );
    let letters = store.dead_letters("p", Position::START, 10).await;
    assert!(
        letters.expect("letters").is_empty(),
        "the run's letters went with it"
    );
    assert!(store.parked_keys("p").await.expect("keys").is_empty());

    assert_eq!(store.load_checkpoint("q").await.expect("load"), Some(p1));
    let letters = store.dead_letters("q", Position::START, 10).await;
    assert_eq!(letters.expect("letters").len(), 1);
    assert_eq!(
        store
            .save_checkpoint_fenced("q", p2, &other)
            .await
            .expect("save"),
        FencedSave::Saved,
        "another projection's lease holds on"
    );
}

/// A letter parked under a lease is kept only while the lease holds, as a fenced save: a
/// worker fenced off (by a takeover or a reset) cannot park a letter the next term would load.
pub async fn a_fenced_off_worker_cannot_park<S: ConformanceStore>(store: S) {
    let ttl = Duration::from_secs(30);
    let held = store.try_acquire("p", "a", ttl).await.expect("acquire");
    let held = held.expect("free");
    let letter = |n: u64| {
        crate::backend::dead_letter(
            "p",
            Position::from_parts(2, n),
            stream("park-1"),
            Version::new(n),
            "Broken",
            Some("doc-1".to_owned()),
            "bad payload",
            time::OffsetDateTime::now_utc(),
        )
    };
    let parked = store.park_fenced(letter(1), &held).await.expect("park");
    assert_eq!(parked, FencedSave::Saved);

    store.reset_checkpoint("p").await.expect("reset");

    let parked = store.park_fenced(letter(2), &held).await.expect("park");
    assert_eq!(
        parked,
        FencedSave::LeaseLost,
        "the reset ended the holder's term"
    );
    let letters = store.dead_letters("p", Position::START, 10).await;
    assert!(
        letters.expect("letters").is_empty(),
        "{:?}",
        store.parked_keys("p").await
    );
    let other = store.try_acquire("q", "a", ttl).await.expect("acquire");
    let other = other.expect("free");
    let parked = store.park_fenced(letter(3), &other).await.expect("park");
    assert_eq!(
        parked,
        FencedSave::LeaseLost,
        "a lease of another name fences nothing"
    );
}

/// Leases are listed by name prefix, in name order, only while unexpired, with their epoch and
/// the time they have left.
pub async fn leases_under_a_prefix_are_listed_while_held<S: ConformanceStore>(store: S) {
    let long = Duration::from_secs(30);
    let b = store
        .try_acquire("p/members/b", "b", long)
        .await
        .expect("acquire");
    // Long, so that it is listed however slow the machine; renewed short below, to expire.
    let a = store
        .try_acquire("p/members/a", "a", long)
        .await
        .expect("acquire");
    store
        .try_acquire("q/members/c", "c", long)
        .await
        .expect("acquire");
    store
        .try_acquire("p/other", "d", long)
        .await
        .expect("acquire");
    let (a, b) = (a.expect("free"), b.expect("free"));
    let listed = store.leases("p/members/").await.expect("list");
    let owners: Vec<(&str, &str, u64)> = listed
        .iter()
        .map(|l| (l.name.as_str(), l.owner.as_str(), l.epoch))
        .collect();
    assert_eq!(
        owners,
        [("p/members/a", "a", a.epoch), ("p/members/b", "b", b.epoch)]
    );
    assert!(listed[1].valid_for > Duration::from_secs(20) && listed[1].valid_for <= long);
    // Expired: no longer listed. Released: neither.
    let renewed = store
        .try_acquire("p/members/a", "a", crate::backend::MIN_LEASE_TTL)
        .await
        .expect("renew");
    assert_eq!(renewed.map(|l| l.epoch), Some(a.epoch), "a renewal");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = store.leases("p/members/").await.expect("list");
        if listed.len() == 1 {
            assert_eq!(listed[0].owner, "b");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired lease is not listed: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.release(&b).await.expect("release");
    assert!(store.leases("p/members/").await.expect("list").is_empty());
}

/// A lease's time to live outside [`MIN_LEASE_TTL`](crate::backend::MIN_LEASE_TTL) to
/// [`MAX_LEASE_TTL`](crate::backend::MAX_LEASE_TTL) (a `Duration::MAX` meant as "for ever", a
/// zero that expires as it is taken) is refused with a typed error, and takes nothing: the
/// lease stays free, and one of the longest time to live allowed is taken.
pub async fn a_lease_ttl_out_of_range_is_refused_with_a_typed_error<S: ConformanceStore>(store: S) {
    let limit = crate::backend::MAX_LEASE_TTL;
    for ttl in [
        Duration::MAX,
        limit + Duration::from_secs(1),
        Duration::ZERO,
        crate::backend::MIN_LEASE_TTL - Duration::from_nanos(1),
    ] {
        let refused = store.try_acquire("p", "a", ttl).await;
        match refused {
            Err(crate::Error::LeaseTtlOutOfRange { ttl: told }) => assert_eq!(told, ttl),
            other => panic!("a time to live of {ttl:?} is refused: {other:?}"),
        }
    }
    assert!(
        store.leases("p").await.expect("list").is_empty(),
        "a refused lease is not held"
    );
    let longest = store
        .try_acquire("p", "b", limit)
        .await
        .expect("the limit is allowed");
    assert!(
        longest.is_some_and(|l| l.owner == "b" && l.valid_for > limit - Duration::from_secs(60))
    );
}
