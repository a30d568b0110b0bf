//! [`PgSchema`]: the validated schema that holds a store's tables, and the SQL texts for it.

use std::fmt;

use crate::{EventJson, PgError};

/// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`): schema and channel
/// names alike.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// What the `NOTIFY` channel adds to the schema's name.
const CHANNEL_SUFFIX: &str = "_events";

/// The PostgreSQL schema holding one store's tables, so each service (or bounded context) can
/// own its own ("database per service" on a shared server).
///
/// Only plain lowercase identifiers are accepted (`a-z`, `0-9`, `_`, not starting with a digit),
/// so no input can inject SQL; the name is quoted in every statement anyway. At most 56 bytes:
/// the store's `NOTIFY` channel, `{schema}_events`, must fit PostgreSQL's 63.
///
/// ```
/// use cqrs_postgres::PgSchema;
///
/// assert!(PgSchema::new("billing").is_ok());
/// assert!(PgSchema::new("billing; DROP TABLE users").is_err());
/// assert!(PgSchema::new("Billing").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PgSchema(String);

impl PgSchema {
    /// Validates a schema name.
    pub fn new(name: &str) -> Result<Self, PgError> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_start
            || !valid_rest
            || name.len() > MAX_IDENTIFIER_BYTES
            || name.starts_with("pg_")
        {
            return Err(PgError::InvalidSchema(name.to_owned()));
        }
        if name.len() + CHANNEL_SUFFIX.len() > MAX_IDENTIFIER_BYTES {
            return Err(PgError::ChannelTooLong {
                schema: name.to_owned(),
                limit: MAX_IDENTIFIER_BYTES,
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted identifier, for SQL.
    /// A name built to be valid (`t_` and 32 hex digits, say), taken without the checks.
    #[cfg(feature = "testing")]
    pub(crate) fn built(name: String) -> Self {
        debug_assert!(Self::new(&name).is_ok(), "{name}");
        Self(name)
    }

    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The `NOTIFY` channel appends on this schema signal.
    pub fn channel(&self) -> String {
        format!("{}{CHANNEL_SUFFIX}", self.0)
    }
}

impl Default for PgSchema {
    /// The schema `cqrs`.
    fn default() -> Self {
        Self("cqrs".to_owned())
    }
}

impl fmt::Display for PgSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PgSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgSchema({:?})", self.0)
    }
}

/// Every statement the store runs, with the schema filled in once.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) append: String,
    pub(crate) append_known: String,
    pub(crate) append_known_batch: String,
    pub(crate) copy_events: String,
    pub(crate) copied: String,
    pub(crate) append_group: String,
    pub(crate) read_stream: String,
    pub(crate) replay: String,
    pub(crate) replay_group: String,
    pub(crate) replay_snapshot: String,
    pub(crate) read_all: String,
    pub(crate) window_end: String,
    pub(crate) read_all_unfiltered: String,
    pub(crate) head: String,
    pub(crate) events_by_id: String,
    pub(crate) command_outcome: String,
    pub(crate) stream_version: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_snapshot: String,
    pub(crate) save_checkpoint: String,
    pub(crate) load_checkpoint: String,
    pub(crate) save_checkpoint_fenced: String,
    pub(crate) reset_checkpoint: String,
    pub(crate) record_breaker: String,
    pub(crate) feed_horizon: String,
    pub(crate) try_acquire_lease: String,
    pub(crate) release_lease: String,
    pub(crate) list_leases: String,
    pub(crate) lease_holds: String,
    pub(crate) park: String,
    pub(crate) park_fenced: String,
    pub(crate) dead_letters: String,
    pub(crate) parked_keys: String,
    pub(crate) key_letters: String,
    pub(crate) requested: String,
    pub(crate) request_key: String,
    pub(crate) request_position: String,
    pub(crate) remove_letters: String,
    pub(crate) redrive_failed: String,
    pub(crate) process_record: String,
    pub(crate) fire_timeouts: String,
    pub(crate) next_timeout: String,
    pub(crate) instance_timeouts: String,
    pub(crate) process_instances: String,
    pub(crate) process_counts: String,
    pub(crate) bus_dead_letter_park: String,
    pub(crate) bus_dead_letter_page: String,
    pub(crate) bus_dead_letter_keys: String,
    pub(crate) bus_dead_letter_key: String,
    pub(crate) bus_dead_letter_request_key: String,
    pub(crate) bus_dead_letter_request_message: String,
    pub(crate) bus_dead_letter_requested: String,
    pub(crate) bus_dead_letter_requested_partition: String,
    pub(crate) bus_dead_letter_take: String,
    pub(crate) bus_dead_letter_failed: String,
}

/// `append.sql` with `record`'s CTEs after its own and before its final SELECT: the statement
/// that records a process-manager input appends from the one text every append uses.
fn with_record_ctes(append: &str, record: &str) -> String {
    let (ctes, select) = append
        .rsplit_once("\nSELECT ")
        .expect("append.sql ends with its final SELECT");
    format!("{ctes},\n{}\nSELECT {select}", record.trim_end())
}

/// `append_known.sql`'s INSERT, returning version and position, as the CTE `inserted` of
/// `summary` (`append_known_batch.sql`): a batch's statement takes the one text of the checks
/// every known-version append runs.
fn summarized(known: &str, summary: &str) -> String {
    let (insert, _) = known
        .rsplit_once("\nRETURNING ")
        .expect("append_known.sql ends with its RETURNING");
    format!("WITH inserted AS (\n{insert}\nRETURNING version, position\n)\n{summary}")
}

impl Queries {
    /// The statements for `schema`'s tables, whose events store payload and metadata as
    /// `event_json`.
    pub(crate) fn new(schema: &PgSchema, event_json: EventJson) -> Self {
        let q = schema.quoted();
        let fill = |sql: &str| {
            sql.replace("{schema}", &q)
                .replace("{event_json}", event_json.sql_type())
        };
        Self {
            append: fill(include_str!("sql/append.sql")),
            append_known: fill(include_str!("sql/append_known.sql")),
            append_known_batch: fill(&summarized(
                include_str!("sql/append_known.sql"),
                include_str!("sql/append_known_batch.sql"),
            )),
            copy_events: fill(include_str!("sql/copy_events.sql")),
            copied: fill(include_str!("sql/copied.sql")),
            append_group: fill(include_str!("sql/append_group.sql")),
            read_stream: fill(include_str!("sql/read_stream.sql")),
            replay: fill(include_str!("sql/replay.sql")),
            replay_group: fill(include_str!("sql/replay_group.sql")),
            replay_snapshot: fill(include_str!("sql/replay_snapshot.sql")),
            read_all: fill(include_str!("sql/read_all.sql")),
            window_end: fill(include_str!("sql/window_end.sql")),
            read_all_unfiltered: fill(include_str!("sql/read_all_unfiltered.sql")),
            head: fill(include_str!("sql/head.sql")),
            events_by_id: fill(include_str!("sql/events_by_id.sql")),
            command_outcome: fill(include_str!("sql/command_outcome.sql")),
            stream_version: fill(include_str!("sql/stream_version.sql")),
            save_snapshot: fill(include_str!("sql/save_snapshot.sql")),
            load_snapshot: fill(include_str!("sql/load_snapshot.sql")),
            save_checkpoint: fill(include_str!("sql/save_checkpoint.sql")),
            load_checkpoint: fill(include_str!("sql/load_checkpoint.sql")),
            save_checkpoint_fenced: fill(include_str!("sql/save_checkpoint_fenced.sql")),
            reset_checkpoint: fill(include_str!("sql/reset_checkpoint.sql")),
            record_breaker: fill(include_str!("sql/record_breaker.sql")),
            feed_horizon: fill(include_str!("sql/feed_horizon.sql")),
            try_acquire_lease: fill(include_str!("sql/try_acquire_lease.sql")),
            release_lease: fill(include_str!("sql/release_lease.sql")),
            list_leases: fill(include_str!("sql/list_leases.sql")),
            lease_holds: fill(include_str!("sql/lease_holds.sql")),
            park: fill(include_str!("sql/park.sql")),
            park_fenced: fill(include_str!("sql/park_fenced.sql")),
            dead_letters: fill(include_str!("sql/dead_letters.sql")),
            parked_keys: fill(include_str!("sql/parked_keys.sql")),
            key_letters: fill(include_str!("sql/key_letters.sql")),
            requested: fill(include_str!("sql/requested.sql")),
            request_key: fill(include_str!("sql/request_key.sql")),
            request_position: fill(include_str!("sql/request_position.sql")),
            remove_letters: fill(include_str!("sql/remove_letters.sql")),
            redrive_failed: fill(include_str!("sql/redrive_failed.sql")),
            process_record: fill(&with_record_ctes(
                include_str!("sql/append.sql"),
                include_str!("sql/process_record.sql"),
            )),
            fire_timeouts: fill(include_str!("sql/fire_timeouts.sql")),
            next_timeout: fill(include_str!("sql/next_timeout.sql")),
            instance_timeouts: fill(include_str!("sql/instance_timeouts.sql")),
            process_instances: fill(include_str!("sql/process_instances.sql")),
            process_counts: fill(include_str!("sql/process_counts.sql")),
            bus_dead_letter_park: fill(include_str!("sql/bus_dead_letter_park.sql")),
            bus_dead_letter_page: fill(include_str!("sql/bus_dead_letter_page.sql")),
            bus_dead_letter_keys: fill(include_str!("sql/bus_dead_letter_keys.sql")),
            bus_dead_letter_key: fill(include_str!("sql/bus_dead_letter_key.sql")),
            bus_dead_letter_request_key: fill(include_str!("sql/bus_dead_letter_request_key.sql")),
            bus_dead_letter_request_message: fill(include_str!(
                "sql/bus_dead_letter_request_message.sql"
            )),
            bus_dead_letter_requested: fill(include_str!("sql/bus_dead_letter_requested.sql")),
            bus_dead_letter_requested_partition: fill(include_str!(
                "sql/bus_dead_letter_requested_partition.sql"
            )),
            bus_dead_letter_take: fill(include_str!("sql/bus_dead_letter_take.sql")),
            bus_dead_letter_failed: fill(include_str!("sql/bus_dead_letter_failed.sql")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_pass() {
        for good in ["cqrs", "billing_2", "_private", &"a".repeat(56)] {
            assert!(PgSchema::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Billing",
            "a-b",
            "a b",
            "a\"; DROP SCHEMA public CASCADE; --",
            "pg_catalog",
            "ünï",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(PgSchema::new(bad), Err(PgError::InvalidSchema(_))),
                "{bad}"
            );
        }
        for too_long in [&"a".repeat(57), &"a".repeat(63)] {
            assert!(
                matches!(PgSchema::new(too_long), Err(PgError::ChannelTooLong { .. })),
                "{too_long}"
            );
        }
    }

    /// `process_record.sql` appends exactly as `append.sql` does, so the append path decodes
    /// its answers (conflicts, duplicates, where the events landed) unchanged.
    #[test]
    fn process_record_checks_and_appends_with_append_sql_verbatim() {
        let append = include_str!("sql/append.sql");
        let record = &with_record_ctes(append, include_str!("sql/process_record.sql"));
        let ctes_start = append
            .find("WITH last AS (")
            .expect("append.sql's first CTE");
        let select_start = append
            .find("SELECT current.version AS current_version")
            .expect("append.sql's final SELECT");
        let ctes = append[ctes_start..select_start].trim_end();
        let select = &append[select_start..];
        assert!(
            ctes.ends_with(')'),
            "append.sql's CTEs end before its SELECT"
        );
        let record_ctes = record
            .find(ctes)
            .expect("process_record.sql holds append.sql's CTEs verbatim");
        assert!(
            record[..record_ctes].lines().all(|l| l.starts_with("--")),
            "they open the statement"
        );
        assert!(
            record.ends_with(select),
            "process_record.sql ends with append.sql's final SELECT verbatim"
        );
        for guarded in ["set_timeouts AS (", "cut_timeouts AS (", "status AS ("] {
            let at = record.find(guarded).expect(guarded);
            let body = &record[at..];
            let end = body.find("\n)").expect("the CTE ends");
            assert!(
                body[..end].contains("EXISTS (SELECT 1 FROM inserted)"),
                "{guarded} writes only when the events were inserted"
            );
        }
    }

    #[test]
    fn every_statement_names_the_schema() {
        let queries = Queries::new(&PgSchema::new("billing").unwrap(), EventJson::Jsonb);
        assert!(queries.append.contains("\"billing\".events"));
        assert!(!queries.read_all.contains("{schema}"));
        assert!(!queries.read_all_unfiltered.contains("{schema}"));
    }

    #[test]
    fn appends_cast_payload_and_metadata_to_the_configured_type() {
        for event_json in [EventJson::Jsonb, EventJson::Json] {
            let queries = Queries::new(&PgSchema::new("billing").unwrap(), event_json);
            let cast = format!("e.payload::{event_json}, e.metadata::{event_json}\n");
            for statement in [
                &queries.append,
                &queries.append_known,
                &queries.append_known_batch,
                &queries.append_group,
                &queries.process_record,
            ] {
                assert!(statement.contains(&cast), "{event_json}: {statement}");
                assert!(!statement.contains("{event_json}"), "{statement}");
            }
        }
    }
}
