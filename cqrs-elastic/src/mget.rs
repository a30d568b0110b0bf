//! One `_mget` of the documents a batch touches: their state, last applied position and
//! `_seq_no` / `_primary_term` (reads are real-time, so they see writes not yet refreshed).

use std::collections::HashMap;

use elasticsearch::{Elasticsearch, MgetParts};
use serde_json::{json, Value};

use crate::bulk::Precondition;
use crate::document::Stored;
use crate::{http, Result};

/// One document as read before a write.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Current {
    /// What the write must expect: absent, or unchanged since this read.
    pub(crate) precondition: Precondition,
    /// The stored document (`None` when absent), or why its metadata is unreadable.
    pub(crate) stored: Result<Option<Stored>, String>,
}

impl Current {
    /// A document that does not exist.
    pub(crate) fn absent() -> Self {
        Self {
            precondition: Precondition::Absent,
            stored: Ok(None),
        }
    }
}

/// Reads `ids` from `index` in one request.
pub(crate) async fn mget(
    client: &Elasticsearch,
    index: &str,
    ids: &[&str],
) -> Result<HashMap<String, Current>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let response = client
        .mget(MgetParts::Index(index))
        .body(json!({ "ids": ids }))
        .send()
        .await?;
    let answer = http::json_ok(response, "mget").await?;
    parse(&answer).map_err(|detail| http::unexpected("mget", detail))
}

/// The documents of an `_mget` answer, by id.
pub(crate) fn parse(answer: &Value) -> Result<HashMap<String, Current>, String> {
    let docs = answer
        .get("docs")
        .and_then(Value::as_array)
        .ok_or_else(|| "no docs in the mget answer".to_owned())?;
    let mut out = HashMap::with_capacity(docs.len());
    for doc in docs {
        let id = doc
            .get("_id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("mget doc without an id: {doc}"))?;
        if let Some(error) = doc.get("error") {
            return Err(format!("mget of {id} failed: {}", http::reason(error)));
        }
        let current = if doc.get("found").and_then(Value::as_bool) == Some(true) {
            let number = |field: &str| {
                doc.get(field)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("mget doc {id} without {field}"))
            };
            let source = doc.get("_source").cloned().unwrap_or(Value::Null);
            Current {
                precondition: Precondition::Unchanged {
                    seq_no: number("_seq_no")?,
                    primary_term: number("_primary_term")?,
                },
                stored: Stored::from_source(id, source).map(Some),
            }
        } else {
            Current::absent()
        };
        out.insert(id.to_owned(), current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::Position;

    #[test]
    fn found_and_missing_documents_are_told_apart() {
        let answer = json!({ "docs": [
            { "_index": "m_v1", "_id": "a", "_version": 3, "_seq_no": 5, "_primary_term": 1, "found": true,
              "_source": { "n": 1, "cqrs": { "id": "a", "position": "4/0", "deleted": false } } },
            { "_index": "m_v1", "_id": "b", "found": false },
            { "_index": "m_v1", "_id": "c", "_seq_no": 0, "_primary_term": 1, "found": true,
              "_source": { "cqrs": { "position": "nope" } } },
        ] });
        let docs = parse(&answer).unwrap();
        let a = &docs["a"];
        assert_eq!(
            a.precondition,
            Precondition::Unchanged {
                seq_no: 5,
                primary_term: 1
            }
        );
        let stored = a.stored.clone().unwrap().unwrap();
        assert_eq!(stored.position, Some(Position::from_parts(4, 0)));
        assert_eq!(docs["b"], Current::absent());
        // Unreadable metadata fails this one document, not the read.
        assert_eq!(
            docs["c"].stored,
            Err("document c has an unreadable cqrs.position \"nope\"".to_owned())
        );
    }

    #[test]
    fn per_document_errors_fail_the_read() {
        let answer = json!({ "docs": [
            { "_index": "m", "_id": "a", "error": { "type": "index_not_found_exception", "reason": "no such index" } },
        ] });
        assert_eq!(
            parse(&answer),
            Err("mget of a failed: index_not_found_exception: no such index".to_owned())
        );
    }
}
