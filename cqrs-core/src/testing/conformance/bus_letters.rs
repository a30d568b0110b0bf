//! Bus dead letters: parked messages kept whole, their keys, requests and takes.

use crate::bus::{BusLetter, BusLetterTarget, MessageId, ParkedKey};
use crate::projection::Redrive;

use super::ConformanceStore;

fn letter(
    consumer: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<&str>,
) -> BusLetter {
    BusLetter::new(
        consumer,
        MessageId::new(topic, partition, offset),
        format!("cannot handle {offset}"),
    )
    .with_key(key.map(|k| k.as_bytes().to_vec()))
    .with_headers(vec![
        ("ce_id".to_owned(), Some(b"not-a-uuid".to_vec())),
        ("empty".to_owned(), None),
        ("binary".to_owned(), Some(vec![0, 159, 146, 150, 255])),
        // Valid UTF-8 with NULs: a big-endian number, as Java producers write them.
        ("count".to_owned(), Some(vec![0, 0, 0, 1])),
        // A name with a NUL is valid UTF-8 too, which another client may send.
        ("trace\0id".to_owned(), Some(b"7".to_vec())),
    ])
    .with_payload(Some(vec![b'{', 0, 255, b'}']))
}

/// A parked message reads back whole (key, headers with their order, empty, binary and NUL
/// values, a name with a NUL, binary payload, error), once per consumer and message, in
/// (topic, partition, offset) order, paged; each consumer sees only its own.
pub async fn bus_letters_round_trip_whole_once_per_message<S: ConformanceStore>(store: S) {
    let first = letter("billing", "orders", 1, 7, Some("order-1"));
    store.park_message(first.clone()).await.expect("park");
    let mut again = first.clone();
    again.error = "a second error".to_owned();
    store.park_message(again).await.expect("park again");
    store
        .park_message(letter("billing", "orders", 0, 9, None).with_payload(None))
        .await
        .expect("park");
    store
        .park_message(letter("billing", "orders", 1, 3, Some("order-2")))
        .await
        .expect("park");
    store
        .park_message(letter("shipping", "orders", 1, 7, Some("order-1")))
        .await
        .expect("park");

    let all = store
        .parked_messages("billing", None, 10)
        .await
        .expect("page");
    let places: Vec<(i32, i64)> = all
        .iter()
        .map(|l| (l.message.partition, l.message.offset))
        .collect();
    assert_eq!(places, [(0, 9), (1, 3), (1, 7)], "message order, once each");
    let read = &all[2];
    assert_eq!(read.error, "cannot handle 7", "the first parking is kept");
    assert_eq!(read.key, first.key);
    assert_eq!(read.headers, first.headers, "headers whole, in order");
    assert_eq!(read.payload, first.payload, "binary payload kept");
    assert_eq!(read.request, None);
    assert_eq!(all[0].payload, None);
    assert_eq!(all[0].key, None);
    let age = time::OffsetDateTime::now_utc() - read.parked_at;
    assert!(
        age.whole_minutes().abs() < 5,
        "parked_at is now: {}",
        read.parked_at
    );

    let page = store
        .parked_messages("billing", Some(&all[0].message), 1)
        .await
        .expect("next page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].message, MessageId::new("orders", 1, 3));
    let shipping = store
        .parked_messages("shipping", None, 10)
        .await
        .expect("page");
    assert_eq!(shipping.len(), 1, "consumers are apart");
}

/// Another message parked at the place of a letter (a topic deleted and created again, or a
/// service moved to another cluster, numbers its offsets from zero again) is refused by name,
/// and the first letter is kept: keeping the first silently lost the new message, and a retry
/// handled the old one's payload in its place. The same message parked again (a consumer
/// replaying after a crash), whatever its error, is kept once.
pub async fn a_different_message_parked_at_a_letters_place_is_refused<S: ConformanceStore>(
    store: S,
) {
    let first = letter("billing", "orders", 1, 7, Some("order-1"));
    store.park_message(first.clone()).await.expect("park");
    let mut replayed = first.clone();
    replayed.error = "failed again after a restart".to_owned();
    store
        .park_message(replayed)
        .await
        .expect("the same message");

    for other in [
        letter("billing", "orders", 1, 7, Some("order-2")),
        first.clone().with_payload(Some(b"{}".to_vec())),
    ] {
        let error = store
            .park_message(other)
            .await
            .expect_err("another message");
        assert!(
            matches!(error, crate::Error::MessageIdReused { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("orders/1@7"), "{error}");
    }
    let kept = store
        .parked_messages("billing", None, 10)
        .await
        .expect("page");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].payload, first.payload);
    assert_eq!(kept[0].error, first.error);
    // Another consumer's letter at the same place is its own.
    store
        .park_message(letter("shipping", "orders", 1, 7, Some("order-9")))
        .await
        .expect("another consumer");
}

/// A message whose key is long (another client's, 4 KiB of bytes that do not compress) is
/// parked, held back and found by its key like any other: a store must not refuse it, or the
/// consumer stops at that message on every restart.
pub async fn a_message_with_a_long_key_is_parked_and_found_by_it<S: ConformanceStore>(store: S) {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let key: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let mut parked = letter("billing", "orders", 2, 11, None);
    parked.key = Some(key.clone());
    store.park_message(parked.clone()).await.expect("park");
    let held = store.parked_message_keys("billing").await.expect("keys");
    assert_eq!(held, [ParkedKey::new("orders", key.clone())]);
    let found = store
        .key_messages("billing", &ParkedKey::new("orders", key.clone()), 10)
        .await
        .expect("the key's letters");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, Some(key));
}

/// Keys are listed once per consumer; a key's letters come in order; requests mark a key or
/// one message and can be withdrawn; taking removes exactly the given letters, and a key with
/// no letter left is no longer held back; a failed re-drive keeps the letter with its new
/// error and without its request.
pub async fn bus_letter_keys_requests_and_takes<S: ConformanceStore>(store: S) {
    for (offset, key) in [(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, None)] {
        store
            .park_message(letter("c", "t", 0, offset, key))
            .await
            .expect("park");
    }
    store
        .park_message(letter("c", "other", 0, 1, Some("a")))
        .await
        .expect("park");
    let keys = store.parked_message_keys("c").await.expect("keys");
    assert_eq!(
        keys,
        [
            ParkedKey::new("other", "a"),
            ParkedKey::new("t", "a"),
            ParkedKey::new("t", "b"),
        ],
        "each (topic, key) once"
    );
    let a = ParkedKey::new("t", "a");
    let letters = store.key_messages("c", &a, 10).await.expect("key");
    let offsets: Vec<i64> = letters.iter().map(|l| l.message.offset).collect();
    assert_eq!(
        offsets,
        [1, 2],
        "the key's letters in order, this topic only"
    );
    assert_eq!(store.key_messages("c", &a, 1).await.expect("key").len(), 1);

    let marked = store
        .request_messages("c", &BusLetterTarget::Key(a.clone()), Some(Redrive::Retry))
        .await
        .expect("request");
    assert_eq!(marked, 2);
    let one = MessageId::new("t", 0, 4);
    let marked = store
        .request_messages(
            "c",
            &BusLetterTarget::Message(one.clone()),
            Some(Redrive::Skip),
        )
        .await
        .expect("request");
    assert_eq!(marked, 1);
    let requested = store.requested_messages("c", 10).await.expect("requested");
    let asked: Vec<(i64, Option<Redrive>)> = requested
        .iter()
        .map(|l| (l.message.offset, l.request))
        .collect();
    assert_eq!(
        asked,
        [
            (1, Some(Redrive::Retry)),
            (2, Some(Redrive::Retry)),
            (4, Some(Redrive::Skip)),
        ]
    );
    store
        .request_messages("c", &BusLetterTarget::Message(one.clone()), None)
        .await
        .expect("withdraw");
    assert_eq!(
        store
            .requested_messages("c", 10)
            .await
            .expect("requested")
            .len(),
        2
    );

    let taken = store
        .take_messages(
            "c",
            &[
                MessageId::new("t", 0, 1),
                MessageId::new("t", 0, 2),
                MessageId::new("t", 0, 99),
            ],
        )
        .await
        .expect("take");
    assert_eq!(taken, 2, "only letters that were there");
    let keys = store.parked_message_keys("c").await.expect("keys");
    assert!(!keys.contains(&a), "key a is free: {keys:?}");
    assert_eq!(
        store
            .parked_messages("c", None, 10)
            .await
            .expect("page")
            .len(),
        3
    );
    assert!(store
        .parked_message_keys("nobody")
        .await
        .expect("keys")
        .is_empty());
}

/// A partition's worker reads its own partition's requests: at most `limit`, in offset order,
/// whatever the requests of the partitions before it (a consumer's requests sorted by topic
/// and partition, a worker reading the first thousand of them and keeping its own waited for
/// good behind a thousand requests for a topic no longer subscribed).
pub async fn bus_letter_requests_are_read_by_partition<S: ConformanceStore>(store: S) {
    let parked = [
        ("a", 0, 1),
        ("t", 0, 1),
        ("t", 0, 2),
        ("t", 0, 3),
        ("t", 1, 1),
    ];
    for (topic, partition, offset) in parked {
        store
            .park_message(letter("c", topic, partition, offset, None))
            .await
            .expect("park");
        store
            .request_messages(
                "c",
                &BusLetterTarget::Message(MessageId::new(topic, partition, offset)),
                Some(Redrive::Retry),
            )
            .await
            .expect("request");
    }
    store
        .park_message(letter("c", "t", 1, 2, None))
        .await
        .expect("park, not requested");
    store
        .park_message(letter("d", "t", 1, 3, None))
        .await
        .expect("park, another consumer's");
    store
        .request_messages(
            "d",
            &BusLetterTarget::Message(MessageId::new("t", 1, 3)),
            Some(Redrive::Skip),
        )
        .await
        .expect("request");

    let offsets = |letters: Vec<BusLetter>| -> Vec<(String, i32, i64)> {
        letters
            .into_iter()
            .map(|l| (l.message.topic, l.message.partition, l.message.offset))
            .collect()
    };
    let read = |topic: &'static str, partition: i32, limit: usize| {
        let store = &store;
        async move {
            offsets(
                store
                    .requested_partition_messages("c", topic, partition, limit)
                    .await
                    .expect("requests"),
            )
        }
    };
    let t = |partition, offset| ("t".to_owned(), partition, offset);
    assert_eq!(
        read("t", 1, 1).await,
        [t(1, 1)],
        "behind the others' requests"
    );
    assert_eq!(read("t", 0, 2).await, [t(0, 1), t(0, 2)]);
    assert_eq!(read("t", 0, 10).await, [t(0, 1), t(0, 2), t(0, 3)]);
    assert_eq!(read("a", 0, 10).await, [("a".to_owned(), 0, 1)]);
    assert!(read("t", 2, 10).await.is_empty());
}
