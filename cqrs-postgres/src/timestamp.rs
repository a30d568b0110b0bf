//! A `timestamptz` column decoded without panicking on values `time` cannot hold.
//!
//! In binary results PostgreSQL sends a timestamp as microseconds since 2000-01-01 UTC, and
//! `infinity` / `-infinity` as `i64::MAX` / `i64::MIN`. sqlx's `OffsetDateTime` decoder adds
//! those microseconds to its epoch with `+`, which panics when the result is out of `time`'s
//! range (years -9999 to 9999): a row whose `recorded_at` was set to `infinity` by hand, or
//! imported from a system that used it, would panic the task reading the feed. This type
//! adds them checked and says what it found in an error instead. Every `timestamptz` the store
//! reads goes through it ([`required`], [`optional`]).

use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::{Row, Type};
use time::{Duration, OffsetDateTime};

/// PostgreSQL's epoch, 2000-01-01 00:00 UTC, made once at compile time (not per row).
const PG_EPOCH: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(946_684_800) {
    Ok(epoch) => epoch,
    Err(_) => OffsetDateTime::UNIX_EPOCH,
};

/// How PostgreSQL writes a `timestamptz` in text (`DateStyle` ISO, which sqlx sets): the
/// fraction only when there is one, the offset's minutes only when they are not zero.
const TEXT_FORMAT: &str = "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]\
                           [offset_hour sign:mandatory][optional [:[offset_minute]]]";

/// A `timestamptz` value within `time`'s range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp(pub(crate) OffsetDateTime);

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let micros = <i64 as Decode<Postgres>>::decode(value)?;
                match micros {
                    i64::MAX => Err("the timestamp is infinity".into()),
                    i64::MIN => Err("the timestamp is -infinity".into()),
                    _ => PG_EPOCH
                        .checked_add(Duration::microseconds(micros))
                        .map(Self)
                        .ok_or_else(|| {
                            format!(
                                "the timestamp {micros} us after 2000-01-01 is out of range \
                                 (years -9999 to 9999)"
                            )
                            .into()
                        }),
                }
            }
            PgValueFormat::Text => {
                // Parsed here: sqlx's text decoder cannot read a value without a fraction
                // (it appends `.0` after the offset). Out of range is a parse error.
                let format = time::format_description::parse_owned::<2>(TEXT_FORMAT)?;
                Ok(Self(OffsetDateTime::parse(value.as_str()?, &format)?))
            }
        }
    }
}

/// The `timestamptz` column `column` of `row`, through [`Timestamp`].
pub(crate) fn required(row: &PgRow, column: &str) -> Result<OffsetDateTime, sqlx::Error> {
    Ok(row.try_get::<Timestamp, _>(column)?.0)
}

/// The nullable `timestamptz` column `column` of `row`, through [`Timestamp`].
pub(crate) fn optional(row: &PgRow, column: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    Ok(row.try_get::<Option<Timestamp>, _>(column)?.map(|at| at.0))
}

#[cfg(test)]
mod tests {
    use sqlx::Row;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    use super::Timestamp;
    use crate::test_pool::test_pool;

    #[tokio::test]
    async fn timestamps_decode_in_binary_and_text_and_infinities_are_errors_not_panics() {
        let pool = test_pool(1).await;
        let at = |rfc3339: &str| Some(OffsetDateTime::parse(rfc3339, &Rfc3339).expect("a time"));
        let cases = [
            ("2026-12-07 01:02:03+05:30", at("2026-12-06T19:32:03Z")),
            (
                "2026-12-07 01:02:03.456789+00",
                at("2026-12-07T01:02:03.456789Z"),
            ),
            // Before PostgreSQL's epoch: negative microseconds.
            ("1999-12-31 23:59:59+00", at("1999-12-31T23:59:59Z")),
            ("infinity", None),
            ("-infinity", None),
            ("10000-01-01 00:00:00+00", None),
        ];
        for (text, expected) in cases {
            // Bound: the extended protocol, a binary result.
            let row = sqlx::query("SELECT $1::timestamptz")
                .bind(text)
                .fetch_one(&pool)
                .await
                .expect("the row");
            let binary = row.try_get::<Timestamp, _>(0).ok().map(|t| t.0);
            assert_eq!(binary, expected, "binary {text}");
            // Unbound: the simple protocol, a text result.
            let row = sqlx::raw_sql(&format!("SELECT '{text}'::timestamptz"))
                .fetch_one(&pool)
                .await
                .expect("the row");
            let text_result = row.try_get::<Timestamp, _>(0).ok().map(|t| t.0);
            assert_eq!(text_result, expected, "text {text}");
        }
    }
}
