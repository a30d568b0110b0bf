//! Identity and position newtypes: [`StreamId`], [`EventId`], [`CommandId`], [`Version`],
//! [`Position`] and [`ExpectedVersion`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The identity of one event stream, usually one aggregate instance: `"order-42"`.
///
/// A stream id is non-empty, at most [`StreamId::MAX_LEN`] bytes long (the whole id: category
/// prefix and `-` included) and holds no control characters. Its *category* is the part before
/// the first `-` (`"order"` for `"order-42"`), which the all-streams feed can filter on, and its
/// *instance* the part after it, which may not be empty (`"order-"` is refused). Built with
/// [`StreamId::with_category`], an instance id can be at most
/// `MAX_LEN - category.len() - 1` bytes long. Cloning is cheap.
///
/// ```
/// use cqrs_core::{InvalidStreamId, StreamId};
///
/// let id = StreamId::new("order-42")?;
/// assert_eq!((id.category(), id.instance()), ("order", "42"));
/// assert!(StreamId::new("").is_err());
/// assert!(StreamId::new("bad\nid").is_err());
/// assert!(matches!(
///     StreamId::with_category("order", ""),
///     Err(InvalidStreamId::EmptyInstance { .. })
/// ));
/// // 200 bytes in all: "order-" leaves 194 for the instance.
/// assert!(StreamId::with_category("order", &"x".repeat(194)).is_ok());
/// assert!(matches!(
///     StreamId::with_category("order", &"x".repeat(195)),
///     Err(InvalidStreamId::InstanceTooLong { max: 194, .. })
/// ));
/// # Ok::<(), cqrs_core::InvalidStreamId>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

/// Why a string was refused as a [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidStreamId {
    /// The id was empty.
    #[error("stream id is empty")]
    Empty,
    /// The id had a category and a `-` but nothing after them (`"member-"`): an empty aggregate
    /// id, most often.
    #[error(
        "stream id \"{category}-\" has an empty instance id after its category \"{category}\""
    )]
    EmptyInstance {
        /// The category before the `-`.
        category: String,
    },
    /// The id was longer than [`StreamId::MAX_LEN`] bytes, counting the whole id.
    #[error(
        "stream id is {len} bytes long, more than the {max} allowed (the whole id, category \
         prefix included)"
    )]
    TooLong {
        /// Length of the refused id, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An instance id given to [`StreamId::with_category`] was longer than what
    /// [`StreamId::MAX_LEN`] leaves once the category and its `-` are counted.
    #[error(
        "instance id is {len} bytes long, more than the {max} a stream id of category \
         \"{category}\" leaves for it (a stream id is at most {} bytes, \"{category}-\" \
         included)",
        StreamId::MAX_LEN
    )]
    InstanceTooLong {
        /// The category.
        category: String,
        /// Length of the refused instance id, in bytes.
        len: usize,
        /// The longest instance id this category leaves room for.
        max: usize,
    },
    /// The id held a control character.
    #[error("stream id contains a control character at byte {index}")]
    ControlCharacter {
        /// Byte offset of the first control character.
        index: usize,
    },
}

impl StreamId {
    /// The longest stream id accepted, in bytes: the whole id, category prefix and `-`
    /// included.
    pub const MAX_LEN: usize = 200;

    /// Validates `id` and wraps it.
    pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidStreamId> {
        let id = id.as_ref();
        Self::validate(id)?;
        Ok(Self(Arc::from(id)))
    }

    /// The stream of aggregate instance `id` in `category`: `"{category}-{id}"`. `id` may not
    /// be empty, and may be at most `MAX_LEN - category.len() - 1` bytes long.
    pub fn with_category(category: &str, id: &str) -> Result<Self, InvalidStreamId> {
        let max = Self::MAX_LEN.saturating_sub(category.len() + 1);
        if id.len() > max && !category.is_empty() {
            return Err(InvalidStreamId::InstanceTooLong {
                category: category.to_owned(),
                len: id.len(),
                max,
            });
        }
        Self::new(format!("{category}-{id}"))
    }

    fn validate(id: &str) -> Result<(), InvalidStreamId> {
        if id.is_empty() {
            return Err(InvalidStreamId::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(InvalidStreamId::TooLong {
                len: id.len(),
                max: Self::MAX_LEN,
            });
        }
        if let Some((index, _)) = id.char_indices().find(|(_, c)| c.is_control()) {
            return Err(InvalidStreamId::ControlCharacter { index });
        }
        if let Some(category) = id.strip_suffix('-').filter(|c| !c.contains('-')) {
            return Err(InvalidStreamId::EmptyInstance {
                category: category.to_owned(),
            });
        }
        Ok(())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the first `-` (the aggregate's own id), or the whole id when it has none.
    pub fn instance(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(&self.0, |(_, instance)| instance)
    }

    /// The part before the first `-`, or the whole id when it has none.
    pub fn category(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(&self.0, |(category, _)| category)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

uuid_id!(
    /// The unique id of one event (UUID v7). Appending an event id twice is idempotent: the
    /// store answers with the first outcome instead of writing again.
    EventId
);

uuid_id!(
    /// A caller-chosen id for one command. The store records it with the events the command
    /// produced, and a command retried with the same id gets the first outcome back.
    CommandId
);

/// The version of a stream: how many events it holds. The first event of a stream has version 1;
/// [`Version::ZERO`] is the version of a stream with no events.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of an empty (or absent) stream.
    pub const ZERO: Version = Version(0);

    /// Wraps a version number.
    pub const fn new(version: u64) -> Self {
        Self(version)
    }

    /// The version number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// This version moved on by `n` events.
    #[must_use]
    pub const fn advance(self, n: u64) -> Self {
        Self(self.0 + n)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A place in a store's total order of all events (its global feed).
///
/// Positions are opaque and totally ordered: a store may pack more than one number into one
/// (the PostgreSQL store packs the writing transaction's id and a sequence number, so that its
/// feed never skips a late commit). Compare positions only with positions from the same store.
/// [`Position::START`] is before every event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Position {
    major: u64,
    minor: u64,
}

impl Position {
    /// Before every event: a feed read from here starts at the first event.
    pub const START: Position = Position { major: 0, minor: 0 };

    /// A position made of two parts, compared major first. Stores choose what the parts mean.
    pub const fn from_parts(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    /// The two parts, as given to [`Position::from_parts`].
    pub const fn parts(self) -> (u64, u64) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.major, self.minor)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({}/{})", self.major, self.minor)
    }
}

/// Why a string was refused as a [`Position`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a position is written as two numbers, `major/minor`")]
pub struct InvalidPosition;

impl FromStr for Position {
    type Err = InvalidPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.split_once('/').ok_or(InvalidPosition)?;
        Ok(Self {
            major: major.parse().map_err(|_| InvalidPosition)?,
            minor: minor.parse().map_err(|_| InvalidPosition)?,
        })
    }
}

/// What an append expects the stream's version to be. A store refuses the append with
/// [`Error::Conflict`](crate::Error::Conflict) when the stream is elsewhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream must be at exactly this version ([`Version::ZERO`] means no events yet).
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: Version) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == Version::ZERO,
            ExpectedVersion::Exact(expected) => actual == expected,
        }
    }

    /// The exact version this expectation names, if any (`NoStream` names [`Version::ZERO`]).
    pub fn exact(self) -> Option<Version> {
        match self {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(Version::ZERO),
            ExpectedVersion::Exact(version) => Some(version),
        }
    }
}

impl From<Version> for ExpectedVersion {
    fn from(version: Version) -> Self {
        ExpectedVersion::Exact(version)
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_validated() {
        assert_eq!(StreamId::new(""), Err(InvalidStreamId::Empty));
        assert!(matches!(
            StreamId::new("x".repeat(StreamId::MAX_LEN + 1)),
            Err(InvalidStreamId::TooLong { .. })
        ));
        assert_eq!(
            StreamId::new("ab\u{7}c"),
            Err(InvalidStreamId::ControlCharacter { index: 2 })
        );
        assert!(StreamId::new("x".repeat(StreamId::MAX_LEN)).is_ok());
        assert!(StreamId::new("bestellung-ü-42").is_ok());
    }

    #[test]
    fn category_is_the_prefix_before_the_first_dash() {
        assert_eq!(StreamId::new("order-1-2").unwrap().category(), "order");
        assert_eq!(StreamId::new("singleton").unwrap().category(), "singleton");
    }

    #[test]
    fn stream_id_deserialization_validates() {
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
        let id: StreamId = serde_json::from_str("\"a-1\"").unwrap();
        assert_eq!(id.as_str(), "a-1");
    }

    #[test]
    fn positions_order_major_first_and_round_trip_as_text() {
        let a = Position::from_parts(1, 900);
        let b = Position::from_parts(2, 3);
        assert!(Position::START < a && a < b);
        assert_eq!(b.to_string().parse::<Position>(), Ok(b));
        assert_eq!("7".parse::<Position>(), Err(InvalidPosition));
    }

    #[test]
    fn expected_versions_admit_the_right_streams() {
        assert!(ExpectedVersion::Any.admits(Version::new(3)));
        assert!(ExpectedVersion::NoStream.admits(Version::ZERO));
        assert!(!ExpectedVersion::NoStream.admits(Version::new(1)));
        assert!(ExpectedVersion::Exact(Version::new(2)).admits(Version::new(2)));
        assert!(!ExpectedVersion::Exact(Version::new(2)).admits(Version::new(3)));
    }

    #[test]
    fn event_ids_are_time_ordered() {
        let a = EventId::new();
        let b = EventId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a <= b);
    }
}
