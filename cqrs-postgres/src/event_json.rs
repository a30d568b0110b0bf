//! [`EventJson`]: the column type of an event's payload and metadata, chosen when the events
//! table is created.

use std::fmt;

use sqlx::PgPool;

use crate::jsonb::JSONB_VERSION;
use crate::{PgError, PgSchema};

/// How the events table stores each event's payload and metadata: see
/// [`PgEventStore::with_event_json`](crate::PgEventStore::with_event_json).
///
/// ```
/// use cqrs_postgres::EventJson;
///
/// assert_eq!(EventJson::default(), EventJson::Jsonb);
/// assert_eq!(EventJson::Json.to_string(), "json");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventJson {
    /// `jsonb`: parsed into PostgreSQL's binary form on every append and printed back to text
    /// on every read; in return, your own SQL over the events gets `jsonb`'s operators
    /// (`@>`, `?`, `jsonb_path_query`) and GIN indexes.
    #[default]
    Jsonb,
    /// `json`: the text as the store wrote it, checked to be JSON on append and sent back as
    /// it is. Cheaper on every append and load; `->` and `->>` still work in your own SQL, the
    /// `jsonb` operators after a cast (`payload::jsonb @> ...`).
    Json,
}

impl EventJson {
    /// The SQL type's name.
    pub(crate) fn sql_type(self) -> &'static str {
        match self {
            EventJson::Jsonb => "jsonb",
            EventJson::Json => "json",
        }
    }

    /// What a value of this type starts with in binary, before its text: `jsonb`'s version
    /// byte, nothing for `json`.
    pub(crate) fn binary_prefix(self) -> &'static [u8] {
        match self {
            EventJson::Jsonb => &[JSONB_VERSION],
            EventJson::Json => &[],
        }
    }

    /// The type of `schema`'s events table's payload and metadata columns; `None` before
    /// the table exists. Columns of two types, or of another type, are
    /// [`PgError::EventJsonMismatch`] against `configured`.
    pub(crate) async fn stored(
        pool: &PgPool,
        schema: &PgSchema,
        configured: EventJson,
    ) -> Result<Option<Self>, PgError> {
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT format_type(a.atttypid, NULL) \
             FROM pg_attribute AS a \
             JOIN pg_class AS c ON c.oid = a.attrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = 'events' \
               AND a.attname IN ('payload', 'metadata') AND NOT a.attisdropped \
             ORDER BY 1",
        )
        .bind(schema.as_str())
        .fetch_all(pool)
        .await?;
        match types.as_slice() {
            [] => Ok(None),
            [one] if one == "jsonb" => Ok(Some(EventJson::Jsonb)),
            [one] if one == "json" => Ok(Some(EventJson::Json)),
            _ => Err(PgError::EventJsonMismatch {
                configured,
                found: types.join(" and "),
            }),
        }
    }

    /// Checks that `schema`'s events table stores what `self` says.
    pub(crate) async fn check(self, pool: &PgPool, schema: &PgSchema) -> Result<(), PgError> {
        match Self::stored(pool, schema, self).await? {
            Some(stored) if stored != self => Err(PgError::EventJsonMismatch {
                configured: self,
                found: stored.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for EventJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_type())
    }
}
