//! A `jsonb` (or `json`) column decoded without trusting its first byte.
//!
//! In binary results PostgreSQL sends a `jsonb` value as a format version byte, always 1 so
//! far, then the JSON text. sqlx's `Json` decoder asserts that byte (`assert_eq!(buf[0], 1)`),
//! so an empty value or another version, from a server we do not control or a later
//! PostgreSQL, would panic the task reading the row. This type reads the same bytes and says
//! what it found in an error instead.

use serde::Deserialize;
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::{Type, TypeInfo as _, ValueRef as _};

/// `json`'s object id (`pg_type.oid`).
const JSON_OID: u32 = 114;
/// `jsonb`'s object id (`pg_type.oid`).
const JSONB_OID: u32 = 3802;
/// The only `jsonb` binary format version PostgreSQL has sent (`jsonb_send`) and takes
/// (`jsonb_recv`): the byte before the text, read here and written by a binary `COPY`.
pub(crate) const JSONB_VERSION: u8 = 1;

/// A `jsonb` or `json` value deserialized into `T`.
#[derive(Debug)]
pub(crate) struct Jsonb<T>(pub(crate) T);

impl<T> Type<Postgres> for Jsonb<T> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(JSONB_OID))
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        matches!(ty.oid(), Some(Oid(JSON_OID | JSONB_OID)))
            || ty.name().eq_ignore_ascii_case("jsonb")
            || ty.name().eq_ignore_ascii_case("json")
    }
}

impl<'r, T: Deserialize<'r>> Decode<'r, Postgres> for Jsonb<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let binary_jsonb = value.format() == PgValueFormat::Binary
            && value.type_info().oid() == Some(Oid(JSONB_OID));
        let text = json_text(value.as_bytes()?, binary_jsonb)?;
        Ok(Self(serde_json::from_slice(text)?))
    }
}

/// The JSON text of a value's bytes: past the version byte when they are a binary `jsonb`.
fn json_text(bytes: &[u8], binary_jsonb: bool) -> Result<&[u8], String> {
    if !binary_jsonb {
        return Ok(bytes);
    }
    match bytes.split_first() {
        Some((&JSONB_VERSION, text)) => Ok(text),
        Some((version, _)) => Err(format!(
            "a binary jsonb value of format version {version}; only version {JSONB_VERSION} is known"
        )),
        None => Err("an empty binary jsonb value, without its format version byte".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use sqlx::Row;

    use super::{json_text, Jsonb};
    use crate::test_pool::test_pool;

    #[test]
    fn a_binary_jsonb_value_of_another_version_or_without_its_version_is_an_error_not_a_panic() {
        let other = json_text(&[2, b'{', b'}'], true).expect_err("version 2");
        assert!(other.contains("format version 2"), "{other}");
        let empty = json_text(&[], true).expect_err("no version byte");
        assert!(empty.contains("empty"), "{empty}");
        assert_eq!(json_text(&[1, b'{', b'}'], true), Ok(&b"{}"[..]));
        // `json`, and `jsonb` in text results, have no version byte.
        assert_eq!(json_text(b"{}", false), Ok(&b"{}"[..]));
    }

    #[tokio::test]
    async fn json_and_jsonb_values_decode_in_binary_and_in_text() {
        let pool = test_pool(1).await;
        let expected = json!({"amount": 7, "note": "é"});
        for ty in ["jsonb", "json"] {
            // Bound parameters: the extended protocol, binary results.
            let row = sqlx::query(&format!("SELECT $1::text::{ty}"))
                .bind(expected.to_string())
                .fetch_one(&pool)
                .await
                .expect("binary");
            let Jsonb(binary): Jsonb<Value> = row.try_get(0).expect("decodes");
            // The simple protocol: text results.
            let row = sqlx::raw_sql(&format!("SELECT '{expected}'::{ty}"))
                .fetch_one(&pool)
                .await
                .expect("text");
            let Jsonb(text): Jsonb<Value> = row.try_get(0).expect("decodes");
            assert_eq!((&binary, &text), (&expected, &expected), "{ty}");
        }
    }
}
