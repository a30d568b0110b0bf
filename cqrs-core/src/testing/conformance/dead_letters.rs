//! Dead letters: round trips, pages, parked keys and operators' requests.

use crate::projection::{DeadLetter, LetterTarget, Redrive};
use crate::{Position, Version};

use super::{stream, ConformanceStore};

/// Dead letters round trip per projection, in feed order, once per position.
pub async fn dead_letters_round_trip<S: ConformanceStore>(store: S) {
    let letter = |n: u64, key: Option<&str>| {
        crate::backend::dead_letter(
            "read-model",
            Position::from_parts(7, n),
            stream("dl-1"),
            Version::new(n),
            "Broken",
            key.map(str::to_owned),
            &format!("bad payload {n}"),
            time::OffsetDateTime::now_utc(),
        )
    };
    assert!(store
        .dead_letters("read-model", Position::START, 100)
        .await
        .expect("none")
        .is_empty());
    store.park(letter(9, Some("doc-1"))).await.expect("park");
    store.park(letter(3, None)).await.expect("park");
    store
        .park(letter(9, Some("doc-1")))
        .await
        .expect("park again");
    let mut other = letter(1, None);
    other.projection = "another".to_owned();
    store.park(other).await.expect("park");
    let letters = store
        .dead_letters("read-model", Position::START, 100)
        .await
        .expect("letters");
    let positions: Vec<u64> = letters.iter().map(|l| l.position.parts().1).collect();
    assert_eq!(positions, [3, 9]);
    assert_eq!(letters[1].key.as_deref(), Some("doc-1"));
    assert_eq!(letters[1].error, "bad payload 9");
    assert_eq!(letters[1].stream_id, stream("dl-1"));
    assert_eq!(letters[1].request, None);
}

fn keyed_letter(n: u64, key: Option<&str>) -> DeadLetter {
    crate::backend::dead_letter(
        "read-model",
        Position::from_parts(7, n),
        stream("dl-1"),
        Version::new(n),
        "Broken",
        key.map(str::to_owned),
        &format!("bad payload {n}"),
        time::OffsetDateTime::now_utc(),
    )
}

fn letter_numbers(letters: &[DeadLetter]) -> Vec<u64> {
    letters.iter().map(|l| l.position.parts().1).collect()
}

/// Letters are listed in pages (`after`, `limit`), the runner gets each parked key once (not
/// every letter), and a key's letters come in feed order.
pub async fn dead_letters_come_in_pages_and_keys_once<S: ConformanceStore>(store: S) {
    for n in [5, 1, 8, 2, 9, 3, 7] {
        let key = match n % 3 {
            0 => None,
            1 => Some("doc-a"),
            _ => Some("doc-b"),
        };
        store.park(keyed_letter(n, key)).await.expect("park");
    }
    let first = store
        .dead_letters("read-model", Position::START, 3)
        .await
        .expect("page 1");
    assert_eq!(letter_numbers(&first), [1, 2, 3]);
    let after = first.last().expect("a full page").position;
    let second = store
        .dead_letters("read-model", after, 3)
        .await
        .expect("page 2");
    assert_eq!(letter_numbers(&second), [5, 7, 8]);
    let third = store
        .dead_letters("read-model", second[2].position, 3)
        .await
        .expect("page 3");
    assert_eq!(letter_numbers(&third), [9]);

    // Feed order, not the text order of the positions' parts ("10" sorts before "9").
    for major in [10, 9] {
        let mut letter = keyed_letter(1, Some("doc-c"));
        letter.position = Position::from_parts(major, 1);
        store.park(letter).await.expect("park");
    }
    let later = store
        .dead_letters("read-model", third[0].position, 3)
        .await
        .expect("page 4");
    let majors: Vec<u64> = later.iter().map(|l| l.position.parts().0).collect();
    assert_eq!(majors, [9, 10]);
    let c = store
        .key_letters("read-model", "doc-c", 10)
        .await
        .expect("doc-c");
    let majors: Vec<u64> = c.iter().map(|l| l.position.parts().0).collect();
    assert_eq!(majors, [9, 10]);

    let mut keys = store.parked_keys("read-model").await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["doc-a", "doc-b", "doc-c"]);
    assert!(store.parked_keys("another").await.expect("keys").is_empty());
    let a = store
        .key_letters("read-model", "doc-a", 10)
        .await
        .expect("doc-a");
    assert_eq!(letter_numbers(&a), [1, 7]);
    let b = store
        .key_letters("read-model", "doc-b", 2)
        .await
        .expect("doc-b");
    assert_eq!(letter_numbers(&b), [2, 5]);
}

/// Retry and skip requests mark letters (a key's, or one by position) until the runner
/// removes the letters or records a failed re-drive; withdrawn requests go.
pub async fn dead_letter_requests_are_kept_until_carried_out<S: ConformanceStore>(store: S) {
    for (n, key) in [
        (1, Some("doc-a")),
        (2, None),
        (3, Some("doc-a")),
        (4, Some("doc-b")),
    ] {
        store.park(keyed_letter(n, key)).await.expect("park");
    }
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none yet")
        .is_empty());
    let key_a = LetterTarget::Key("doc-a".to_owned());
    assert_eq!(store.retry("read-model", &key_a).await.expect("retry"), 2);
    let second = LetterTarget::Position(Position::from_parts(7, 2));
    assert_eq!(store.skip("read-model", &second).await.expect("skip"), 1);
    let nowhere = LetterTarget::Position(Position::from_parts(7, 99));
    assert_eq!(store.skip("read-model", &nowhere).await.expect("skip"), 0);
    assert_eq!(store.retry("another", &key_a).await.expect("retry"), 0);

    let requested = store.requested("read-model", 10).await.expect("requested");
    assert_eq!(letter_numbers(&requested), [1, 2, 3]);
    let requests: Vec<Option<Redrive>> = requested.iter().map(|l| l.request).collect();
    assert_eq!(
        requests,
        [
            Some(Redrive::Retry),
            Some(Redrive::Skip),
            Some(Redrive::Retry)
        ]
    );
    let first = store.requested("read-model", 1).await.expect("requested");
    assert_eq!(letter_numbers(&first), [1]);

    // The runner: the skipped letter and a re-driven one go; a failed re-drive stays.
    let removed = store
        .remove(
            "read-model",
            &[Position::from_parts(7, 2), Position::from_parts(7, 1)],
        )
        .await
        .expect("remove");
    assert_eq!(removed, 2);
    store
        .redrive_failed("read-model", Position::from_parts(7, 3), "still bad")
        .await
        .expect("failed");
    let left = store
        .dead_letters("read-model", Position::START, 10)
        .await
        .expect("letters");
    assert_eq!(letter_numbers(&left), [3, 4]);
    assert_eq!(
        (left[0].error.as_str(), left[0].request),
        ("still bad", None)
    );
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none left")
        .is_empty());

    // A request withdrawn.
    let key_b = LetterTarget::Key("doc-b".to_owned());
    store.retry("read-model", &key_b).await.expect("retry");
    assert_eq!(
        store
            .request("read-model", &key_b, None)
            .await
            .expect("withdraw"),
        1
    );
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none left")
        .is_empty());
    // Parking a letter again keeps the first, request and all.
    store.retry("read-model", &key_b).await.expect("retry");
    store
        .park(keyed_letter(4, Some("doc-b")))
        .await
        .expect("park again");
    let requested = store.requested("read-model", 10).await.expect("requested");
    assert_eq!(letter_numbers(&requested), [4]);
}
