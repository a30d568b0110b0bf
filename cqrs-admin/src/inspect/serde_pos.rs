//! Positions as `major/minor` strings in JSON, the way they display and parse.

use cqrs_core::Position;
use serde::{Deserialize, Deserializer, Serializer};

/// Writes a position as `major/minor`.
pub(crate) fn serialize<S: Serializer>(position: &Position, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(position)
}

/// Reads a position written `major/minor`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// The same for an optional position (`null` when absent).
pub(crate) mod option {
    use cqrs_core::Position;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(position)` as `major/minor`, `None` as `null`.
    pub(crate) fn serialize<S: Serializer>(
        position: &Option<Position>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match position {
            Some(p) => s.collect_str(p),
            None => s.serialize_none(),
        }
    }

    /// Reads `major/minor` or `null`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Position>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}
