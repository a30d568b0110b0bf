//! `#[derive(DomainEvent)]`'s `decode_json` deserializes the payload text in one pass, without
//! the `Value` that `decode` takes. It must give the same event, and fail where `decode`
//! fails, for every shape of variant and every payload a store may hold.

use std::collections::BTreeMap;

use cqrs_core::{DomainEvent, Error};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Shapes {
    Struct {
        name: String,
        cents: u64,
        #[serde(default)]
        note: Option<String>,
    },
    Nested {
        lines: Vec<Line>,
        tags: BTreeMap<String, i64>,
    },
    Newtype(u64),
    NewtypeOption(Option<String>),
    NewtypeStruct(Line),
    Tuple(u8, String),
    Unit,
    #[serde(rename = "Renamed.v1")]
    Renamed {
        ratio: f64,
    },
    Flattened {
        id: u32,
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
    },
    Strict(Only),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Only {
    only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "snake_case")]
enum Snake {
    ItemAdded { sku: String },
    CartCleared,
}

/// Both decoders on `(event_type, text)`: the same event, or both an error.
fn same<E: DomainEvent + PartialEq + std::fmt::Debug>(event_type: &str, text: &str) -> Option<E> {
    let by_value = serde_json::from_str(text)
        .map_err(|source| Error::Decode {
            stream_id: None,
            version: None,
            event_type: event_type.to_owned(),
            source,
        })
        .and_then(|value| E::decode(event_type, value));
    let by_text = E::decode_json(event_type, text);
    match (by_value, by_text) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{event_type} {text}");
            Some(a)
        }
        (Err(a), Err(b)) => {
            assert!(
                matches!((&a, &b), (Error::Decode { .. }, Error::Decode { .. })),
                "{event_type} {text}: {a:?} / {b:?}"
            );
            None
        }
        (a, b) => panic!("{event_type} {text}: the decoders disagree: {a:?} / {b:?}"),
    }
}

#[test]
fn every_variant_shape_decodes_the_same_from_text() {
    let accepted: &[(&str, &str)] = &[
        (
            "Struct",
            r#"{"name": "ünïcødé ✓ \"q\" \\ \n", "cents": 18446744073709551615}"#,
        ),
        (
            "Struct",
            r#"{"cents": 1, "name": "x", "note": "n", "unknown": [1, {"a": null}]}"#,
        ),
        ("Struct", r#"  {"name":"x","cents":0}  "#),
        (
            "Nested",
            r#"{"lines": [{"sku": "a", "quantity": 2}], "tags": {"k": -9223372036854775808}}"#,
        ),
        ("Nested", r#"{"lines": [], "tags": {}}"#),
        ("Newtype", "42"),
        ("NewtypeOption", r#""some""#),
        ("NewtypeStruct", r#"{"sku": "a", "quantity": 1}"#),
        ("Tuple", r#"[255, "t"]"#),
        ("Unit", "null"),
        ("Renamed.v1", r#"{"ratio": 2.5e-3}"#),
        (
            "Flattened",
            r#"{"id": 1, "extra": {"deep": [true]}, "more": "x"}"#,
        ),
        ("Strict", r#"{"only": true}"#),
    ];
    for (event_type, text) in accepted {
        assert!(
            same::<Shapes>(event_type, text).is_some(),
            "{event_type} {text} should decode"
        );
    }
    assert_eq!(
        same::<Snake>("item_added", r#"{"sku": "s"}"#),
        Some(Snake::ItemAdded { sku: "s".into() })
    );
    assert_eq!(
        same::<Snake>("cart_cleared", "null"),
        Some(Snake::CartCleared)
    );
}

#[test]
fn every_event_decodes_from_the_payload_it_encodes_to_by_either_path() {
    let line = Line {
        sku: "s".into(),
        quantity: 2,
    };
    let events = [
        Shapes::Struct {
            name: "x".into(),
            cents: 1,
            note: None,
        },
        Shapes::Nested {
            lines: vec![line.clone()],
            tags: BTreeMap::from([("t".to_owned(), -1)]),
        },
        Shapes::Newtype(7),
        // `null` once the tag is stripped, as a unit variant's payload is.
        Shapes::NewtypeOption(None),
        Shapes::NewtypeOption(Some("n".into())),
        Shapes::NewtypeStruct(line),
        Shapes::Tuple(1, "t".into()),
        Shapes::Unit,
        Shapes::Renamed { ratio: 0.5 },
        Shapes::Strict(Only { only: true }),
    ];
    for event in events {
        let payload = event.encode().expect("encodes");
        let decoded = same::<Shapes>(event.event_type(), &payload.to_string());
        assert_eq!(decoded.as_ref(), Some(&event), "stored as {payload}");
    }
}

#[test]
fn every_payload_that_decode_refuses_is_refused_from_text_too() {
    let refused: &[(&str, &str)] = &[
        ("Struct", r#"{"name": "x"}"#),
        ("Struct", r#"{"name": "x", "cents": -1}"#),
        ("Struct", r#"{"name": "x", "cents": 1.5}"#),
        ("Struct", r#"{"name": "x", "cents": 18446744073709551616}"#),
        ("Struct", "null"),
        ("Struct", r#"["by position", 7, null]"#),
        ("Struct", "7"),
        ("Struct", r#"{"name": "x", "cents": 1} trailing"#),
        ("Struct", r#"{"name": "x", "cents": 1"#),
        ("Struct", ""),
        ("Newtype", r#""42""#),
        ("Newtype", "null"),
        ("Tuple", r#"[256, "t"]"#),
        ("Tuple", r#"[1]"#),
        ("Tuple", r#"{"0": 1, "1": "t"}"#),
        ("Unit", "{}"),
        ("Unit", "[]"),
        ("Unit", "0"),
        ("Strict", r#"{"only": true, "more": 1}"#),
        ("NoSuchType", r#"{"name": "x", "cents": 1}"#),
        ("NoSuchType", "null"),
        ("struct", r#"{"name": "x", "cents": 1}"#),
        ("Renamed", r#"{"ratio": 1}"#),
    ];
    for (event_type, text) in refused {
        assert!(
            same::<Shapes>(event_type, text).is_none(),
            "{event_type} {text} should be refused"
        );
    }
}

#[test]
fn an_error_from_text_names_the_event_type() {
    match Shapes::decode_json("Struct", r#"{"name": 1}"#) {
        Err(Error::Decode {
            event_type,
            stream_id: None,
            version: None,
            ..
        }) => assert_eq!(event_type, "Struct"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}
