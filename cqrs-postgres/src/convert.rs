//! Crossing the u64 / BIGINT boundary, and positions to and from their two columns.

use cqrs_core::{Position, Version};

use crate::PgError;

/// A `u64` as BIGINT, or a typed error.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::OutOfRange {
        what,
        value: value.to_string(),
    })
}

/// A row limit as BIGINT (a limit past it means no limit).
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A BIGINT read back as `u64`; a negative value is a corrupt row.
pub(crate) fn to_u64(what: &'static str, value: i64) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::CorruptRow { what })
}

pub(crate) fn version(value: i64) -> Result<Version, PgError> {
    Ok(Version::new(to_u64("negative version", value)?))
}

/// A stored `schema_version` (INTEGER) read back; a negative one is a corrupt row.
pub(crate) fn schema_version(value: i32) -> Result<u32, PgError> {
    u32::try_from(value).map_err(|_| PgError::CorruptRow {
        what: "negative schema version",
    })
}

/// A position from the `transaction_id::text` and `position` columns.
pub(crate) fn position(transaction_id: &str, position: i64) -> Result<Position, PgError> {
    let major = transaction_id
        .parse::<u64>()
        .map_err(|_| PgError::CorruptRow {
            what: "transaction id is not a number",
        })?;
    feed_position(major, position)
}

/// A position as the (`xid8` text, BIGINT) pair the feed compares with.
pub(crate) fn position_parts(position: Position) -> Result<(String, i64), PgError> {
    let (major, minor) = position.parts();
    // A reader may hold a "read everything of this transaction" position whose minor part is
    // past i64::MAX; it means the same as i64::MAX here.
    let minor = i64::try_from(minor).unwrap_or(i64::MAX);
    Ok((major.to_string(), minor))
}

/// A position from the `transaction_id` (as `xid8`) and `position` columns.
pub(crate) fn feed_position(transaction_id: u64, position: i64) -> Result<Position, PgError> {
    Ok(Position::from_parts(
        transaction_id,
        to_u64("negative position", position)?,
    ))
}

/// The position just past every event of transactions older than `horizon`, the oldest
/// transaction id still open.
pub(crate) fn below_horizon(horizon: u64) -> Position {
    Position::from_parts(horizon.saturating_sub(1), i64::MAX.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_numbers_are_typed_errors() {
        assert!(matches!(
            to_i64("version", u64::MAX),
            Err(PgError::OutOfRange { .. })
        ));
        assert!(matches!(
            to_u64("position", -1),
            Err(PgError::CorruptRow { .. })
        ));
        assert_eq!(to_i64("version", 7).unwrap(), 7);
    }

    #[test]
    fn positions_round_trip_through_their_columns() {
        let p = position("742", 9).unwrap();
        assert_eq!(p, Position::from_parts(742, 9));
        assert_eq!(position_parts(p).unwrap(), ("742".to_owned(), 9));
        assert!(position("x", 1).is_err());
        assert_eq!(feed_position(742, 9).unwrap(), p);
        assert!(feed_position(742, -1).is_err());
        let past = below_horizon(743);
        assert!(past > p && past < Position::from_parts(743, 0));
    }
}
