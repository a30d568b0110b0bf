//! `#[derive(DomainEvent)]` names each variant the way serde writes it, so encoding (which
//! refuses a mismatch) and decoding round-trip under every renaming serde offers.

#![allow(clippy::enum_variant_names)]

use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

/// Encodes `event`, checks the stored type is `expected`, and decodes it back.
fn round_trip<E: DomainEvent + PartialEq + std::fmt::Debug>(event: &E, expected: &str) {
    assert_eq!(event.event_type(), expected);
    let tag = match serde_json::to_value(event).expect("serializes") {
        serde_json::Value::Object(map) => map.keys().next().cloned().expect("one key"),
        serde_json::Value::String(tag) => tag,
        other => panic!("not externally tagged: {other}"),
    };
    assert_eq!(tag, expected, "serde's tag");
    let payload = event.encode().expect("no mismatch");
    assert_eq!(&E::decode(expected, payload).expect("decodes"), event);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Plain {
    BookLent { member: String },
    BookReturned(u32),
    Pair(u32, u32),
    ShelfCleared,
}

#[test]
fn plain_variants_are_their_own_names_in_every_shape() {
    round_trip(
        &Plain::BookLent {
            member: "m-1".into(),
        },
        "BookLent",
    );
    round_trip(&Plain::BookReturned(3), "BookReturned");
    round_trip(&Plain::Pair(1, 2), "Pair");
    round_trip(&Plain::ShelfCleared, "ShelfCleared");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "snake_case")]
enum Snake {
    BookLent {
        member: String,
    },
    #[serde(rename = "returned.v1")]
    BookReturned,
    #[serde(rename(serialize = "lost", deserialize = "lost"), alias = "Missing")]
    BookLost,
}

#[test]
fn rename_all_and_a_variants_rename_are_honoured() {
    round_trip(
        &Snake::BookLent {
            member: "m-1".into(),
        },
        "book_lent",
    );
    round_trip(&Snake::BookReturned, "returned.v1");
    round_trip(&Snake::BookLost, "lost");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE", deny_unknown_fields)]
enum Kebab {
    BookLent {
        #[serde(default)]
        member: String,
    },
}

#[test]
fn other_serde_keys_leave_the_name_alone() {
    round_trip(
        &Kebab::BookLent {
            member: "m-1".into(),
        },
        "BOOK-LENT",
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(version = 3)]
enum Versioned {
    Current,
    #[event(version = 7)]
    Newer,
}

#[test]
fn event_version_sets_the_schema_version_per_enum_and_per_variant() {
    assert_eq!(Versioned::Current.schema_version(), 3);
    assert_eq!(Versioned::Newer.schema_version(), 7);
    assert_eq!(Plain::ShelfCleared.schema_version(), 1);
}
