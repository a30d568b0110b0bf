//! A `xid8` column decoded as the number it is.
//!
//! sqlx has no type for `xid8`. Selecting `transaction_id::text` and parsing it costs the server
//! a number formatted per row and the client the parse back: on the feed, one `xid8` per event.
//! Selected as it is, the binary protocol hands over its eight bytes (`xid8send`), big-endian,
//! which this type reads as they are.

use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::Type;

/// `xid8`'s object id (`pg_type.oid`, fixed since PostgreSQL 13).
const XID8_OID: u32 = 5069;

/// A `xid8` value: a 64-bit transaction id, epoch included.
///
/// Read with `try_get_unchecked` from a column the statement fixes as `xid8`: sqlx knows the
/// type only by its object id, and looks its name up once per connection on the first
/// statement that returns one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Xid8(pub(crate) u64);

impl Type<Postgres> for Xid8 {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(XID8_OID))
    }
}

impl<'r> Decode<'r, Postgres> for Xid8 {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let bytes = value.as_bytes()?;
                let eight: [u8; 8] = bytes
                    .try_into()
                    .map_err(|_| format!("a binary xid8 is 8 bytes, got {}", bytes.len()))?;
                Ok(Self(u64::from_be_bytes(eight)))
            }
            PgValueFormat::Text => Ok(Self(value.as_str()?.parse()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_pool::test_pool;
    use sqlx::Row;

    use super::Xid8;

    /// Ids past 32 bits (a later epoch) and at the top of the range, as the server sends them.
    const IDS: [u64; 4] = [3, 4_294_967_297, 81_604_378_624_000_123, u64::MAX];

    #[tokio::test]
    async fn xid8_values_decode_to_their_numbers_in_binary_and_in_text() {
        let pool = test_pool(1).await;
        for id in IDS {
            // Bound parameters: the extended protocol, binary results.
            let row = sqlx::query("SELECT $1::text::xid8")
                .bind(id.to_string())
                .fetch_one(&pool)
                .await
                .expect("binary");
            let Xid8(binary) = row.try_get_unchecked(0).expect("decodes");
            // The simple protocol: text results.
            let row = sqlx::raw_sql(&format!("SELECT '{id}'::xid8"))
                .fetch_one(&pool)
                .await
                .expect("text");
            let Xid8(text) = row.try_get_unchecked(0).expect("decodes");
            assert_eq!((binary, text), (id, id));
        }
    }
}
