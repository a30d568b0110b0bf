//! The stored shape of a document: the user's fields plus the framework's `cqrs` metadata
//! object (its id, the last applied feed position, and whether it is a tombstone).

use cqrs_core::Position;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::{EsError, Result};

/// The top-level field holding the framework's metadata in every document.
pub(crate) const META_FIELD: &str = "cqrs";
/// The metadata's document id, a keyword: the tie-breaker of every sorted search.
pub(crate) const META_ID: &str = "cqrs.id";
/// The metadata's tombstone flag.
pub(crate) const META_DELETED: &str = "cqrs.deleted";

/// The mapping of the metadata object.
pub(crate) fn meta_mapping() -> Value {
    json!({
        "properties": {
            "id": { "type": "keyword" },
            "position": { "type": "keyword", "index": false },
            "deleted": { "type": "boolean" }
        }
    })
}

/// A document as the store holds it, split into its metadata and the user's part.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stored {
    /// The last applied position; `None` for a document written without our metadata.
    pub(crate) position: Option<Position>,
    /// Whether it is a tombstone.
    pub(crate) deleted: bool,
    /// The user's fields: the `_source` object without `cqrs`.
    pub(crate) source: Value,
}

impl Stored {
    /// Splits a `_source`. Fails when the metadata is there but unreadable.
    pub(crate) fn from_source(id: &str, source: Value) -> Result<Self, String> {
        let Value::Object(mut source) = source else {
            return Err(format!("document {id} is not a JSON object"));
        };
        let Some(meta) = source.remove(META_FIELD) else {
            return Ok(Self {
                position: None,
                deleted: false,
                source: Value::Object(source),
            });
        };
        let position =
            match meta.get("position") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.parse::<Position>().map_err(|_| {
                    format!("document {id} has an unreadable cqrs.position {text:?}")
                })?),
                Some(other) => {
                    return Err(format!(
                        "document {id} has an unreadable cqrs.position {other}"
                    ))
                }
            };
        let deleted = meta
            .get("deleted")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            position,
            deleted,
            source: Value::Object(source),
        })
    }

    /// The user's document, `None` for a tombstone.
    pub(crate) fn document<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        if self.deleted {
            return Ok(None);
        }
        T::deserialize(&self.source)
            .map(Some)
            .map_err(|source| EsError::Decode {
                id: id.to_owned(),
                source,
            })
    }
}

/// The `_source` of a document as JSON bytes: the user's fields plus the metadata, or only
/// the metadata for a tombstone (`None`). Written straight from the typed document: this runs
/// for every document of every batch.
pub(crate) fn source_json<T: Serialize>(
    id: &str,
    document: Option<&T>,
    position: Position,
) -> Result<Vec<u8>> {
    let meta = Meta {
        id,
        position: position.to_string(),
        deleted: document.is_none(),
    };
    let written = match document {
        Some(document) => serde_json::to_vec(&Live {
            document,
            cqrs: meta,
        }),
        None => serde_json::to_vec(&Tombstone { cqrs: meta }),
    };
    // A document that is not a JSON object cannot carry the metadata beside its fields.
    written.map_err(|source| EsError::Encode {
        id: id.to_owned(),
        source: Some(source),
    })
}

#[derive(Serialize)]
struct Meta<'a> {
    id: &'a str,
    position: String,
    deleted: bool,
}

#[derive(Serialize)]
struct Live<'a, T> {
    #[serde(flatten)]
    document: &'a T,
    cqrs: Meta<'a>,
}

#[derive(Serialize)]
struct Tombstone<'a> {
    cqrs: Meta<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        n: u32,
    }

    fn parse(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn live_documents_round_trip_with_their_metadata() {
        let position = Position::from_parts(12, 3);
        let source = parse(source_json("d-1", Some(&Doc { n: 7 }), position).unwrap());
        assert_eq!(
            source,
            json!({ "n": 7, "cqrs": { "id": "d-1", "position": "12/3", "deleted": false } })
        );
        let stored = Stored::from_source("d-1", source).unwrap();
        assert_eq!(stored.position, Some(position));
        assert_eq!(stored.document::<Doc>("d-1").unwrap(), Some(Doc { n: 7 }));
    }

    #[test]
    fn tombstones_read_as_absent() {
        let source = source_json::<Doc>("d-1", None, Position::from_parts(1, 1)).unwrap();
        let stored = Stored::from_source("d-1", parse(source)).unwrap();
        assert!(stored.deleted);
        assert_eq!(stored.document::<Doc>("d-1").unwrap(), None);
    }

    #[test]
    fn positions_are_parsed_not_compared_as_text() {
        let a = Stored::from_source("x", json!({ "cqrs": { "position": "9/0" } })).unwrap();
        let b = Stored::from_source("x", json!({ "cqrs": { "position": "10/0" } })).unwrap();
        assert!(a.position < b.position);
        assert!(Stored::from_source("x", json!({ "cqrs": { "position": "ten" } })).is_err());
        assert!(source_json("x", Some(&vec![1]), Position::START).is_err());
    }

    #[test]
    fn documents_without_metadata_have_no_position() {
        let stored = Stored::from_source("x", json!({ "n": 1 })).unwrap();
        assert_eq!(stored.position, None);
        assert!(!stored.deleted);
    }
}
