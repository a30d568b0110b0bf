//! One instance's timeline: its journal read back as entries people can follow (what it
//! received, what it decided), then its live timeouts and any events parked under it.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::process::journal::{InputReceived, ReceivedKind, RecordedAction, INPUT_RECEIVED};
use crate::process::store::ScheduledTimeout;
use crate::process::InputId;
use crate::projection::DeadLetter;
use crate::{CommandId, Error, Position, RecordedEvent, Result, Version};

/// One entry of an instance's timeline.
///
/// Journal entries come first, in version order; then the live timeouts, earliest first; then
/// the events parked under the instance, in feed order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TimelineEntry {
    /// The journal entry's version in the instance stream. A live timeout carries the version
    /// of the decision that scheduled it; a parked event the journal's version when it was
    /// read.
    pub version: Version,
    /// The journal entry's feed position (a parked event's own position).
    pub position: Position,
    /// When the store recorded it (when a parked event was parked).
    pub recorded_at: OffsetDateTime,
    /// The process clock's time: when the input was recorded, or when a live timeout is due.
    pub at: OffsetDateTime,
    /// What it is.
    pub kind: TimelineKind,
}

/// What a timeline entry is.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TimelineKind {
    /// The instance received an input.
    Received {
        /// The input's id.
        input: InputId,
        /// For people: `"event OrderPlaced from order-7@3 (12/0)"`, `"timeout shipping (due
        /// …)"`, `"accepted {command} (cmd 3f2a1b0c…)"`, `"rejected {command} (cmd …):
        /// {error}"`.
        what: String,
        /// The event's payload, the timeout's payload, the accepted command or the rejection.
        payload: Value,
    },
    /// The actions decided for an input.
    Decided {
        /// The input they answer.
        input: InputId,
        /// For people, in order: `"send {command} (cmd 3f2a1b0c…)"`, `"after 30s: shipping"`
        /// (or `"at {time}: shipping"` when not in the future), `"cancel shipping"`,
        /// `"complete"`, `"fail: {reason}"`. Empty when the input called for nothing.
        actions: Vec<String>,
    },
    /// A timeout scheduled and neither fired nor cancelled yet.
    Live {
        /// Its key.
        key: String,
        /// Its id.
        timeout_id: Uuid,
        /// When it is due.
        due_at: OffsetDateTime,
        /// What it brings back.
        payload: Value,
    },
    /// An event of the instance parked as a dead letter: the instance is held back (failed,
    /// for operators) until it is retried or skipped.
    Parked {
        /// For people: `"OrderPlaced from order-7@3"`.
        what: String,
        /// Why it was parked.
        error: String,
    },
}

/// Builds a timeline from the journal's events, then the live timeouts and parked letters.
#[derive(Default)]
pub(super) struct Timeline {
    entries: Vec<TimelineEntry>,
    /// Commands decided so far, so outcomes can name theirs.
    commands: HashMap<CommandId, Value>,
    /// Which journal entry scheduled each timeout.
    scheduled_by: HashMap<Uuid, (Version, Position, OffsetDateTime)>,
}

impl Timeline {
    /// Adds one journal event.
    pub(super) fn push(&mut self, process: &str, event: &RecordedEvent) -> Result<()> {
        match event.event_type.as_str() {
            INPUT_RECEIVED => {
                let received: InputReceived = decode(event)?;
                let (what, payload) = self.describe_received(&received.kind);
                self.entry(
                    event,
                    received.at,
                    TimelineKind::Received {
                        input: received.input,
                        what,
                        payload,
                    },
                );
                let actions: Vec<String> = received
                    .actions
                    .iter()
                    .map(|a| self.describe_action(event, received.at, &a.action))
                    .collect();
                self.entry(
                    event,
                    received.at,
                    TimelineKind::Decided {
                        input: received.input,
                        actions,
                    },
                );
            }
            other => {
                return Err(Error::process(
                    process,
                    format!(
                        "unexpected event {other} at {}@{} in an instance journal",
                        event.stream_id, event.version
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Adds the live timeouts, earliest first, each at the decision that scheduled it.
    pub(super) fn live(&mut self, mut timeouts: Vec<ScheduledTimeout>) {
        timeouts.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        for timeout in timeouts {
            let (version, position, recorded_at) = self
                .scheduled_by
                .get(&timeout.timeout_id)
                .copied()
                .unwrap_or_else(|| self.last_place());
            self.entries.push(TimelineEntry {
                version,
                position,
                recorded_at,
                at: timeout.due_at,
                kind: TimelineKind::Live {
                    key: timeout.key,
                    timeout_id: timeout.timeout_id,
                    due_at: timeout.due_at,
                    payload: timeout.payload,
                },
            });
        }
    }

    /// Adds the events parked under the instance, in feed order.
    pub(super) fn parked(&mut self, letters: Vec<DeadLetter>) {
        let (version, _, _) = self.last_place();
        for letter in letters {
            self.entries.push(TimelineEntry {
                version,
                position: letter.position,
                recorded_at: letter.parked_at,
                at: letter.parked_at,
                kind: TimelineKind::Parked {
                    what: format!(
                        "{} from {}@{}",
                        letter.event_type, letter.stream_id, letter.version
                    ),
                    error: letter.error,
                },
            });
        }
    }

    /// The entries, in order.
    pub(super) fn into_entries(self) -> Vec<TimelineEntry> {
        self.entries
    }

    fn last_place(&self) -> (Version, Position, OffsetDateTime) {
        self.entries
            .iter()
            .rev()
            .find(|e| {
                !matches!(
                    e.kind,
                    TimelineKind::Live { .. } | TimelineKind::Parked { .. }
                )
            })
            .map_or(
                (Version::ZERO, Position::START, OffsetDateTime::UNIX_EPOCH),
                |e| (e.version, e.position, e.recorded_at),
            )
    }

    fn entry(&mut self, event: &RecordedEvent, at: OffsetDateTime, kind: TimelineKind) {
        self.entries.push(TimelineEntry {
            version: event.version,
            position: event.position,
            recorded_at: event.recorded_at,
            at,
            kind,
        });
    }

    fn describe_received(&self, kind: &ReceivedKind) -> (String, Value) {
        match kind {
            ReceivedKind::Event {
                source,
                event_type,
                payload,
                ..
            } => (
                format!(
                    "event {event_type} from {}@{} ({})",
                    source.stream, source.version, source.position
                ),
                payload.clone(),
            ),
            ReceivedKind::Timeout {
                key,
                due_at,
                payload,
                ..
            } => (
                format!("timeout {key} (due {})", rfc3339(*due_at)),
                payload.clone(),
            ),
            ReceivedKind::Accepted { step } => {
                let command = self.command(step.command_id);
                (
                    format!(
                        "accepted {} (cmd {})",
                        short_json(&command),
                        short_id(step.command_id)
                    ),
                    command,
                )
            }
            ReceivedKind::Rejected { step, error } => (
                format!(
                    "rejected {} (cmd {}): {}",
                    short_json(&self.command(step.command_id)),
                    short_id(step.command_id),
                    short_json(error)
                ),
                error.clone(),
            ),
        }
    }

    fn describe_action(
        &mut self,
        event: &RecordedEvent,
        at: OffsetDateTime,
        action: &RecordedAction,
    ) -> String {
        match action {
            RecordedAction::Send {
                command,
                command_id,
            } => {
                self.commands.insert(*command_id, command.clone());
                format!(
                    "send {} (cmd {})",
                    short_json(command),
                    short_id(*command_id)
                )
            }
            RecordedAction::Schedule {
                key,
                timeout_id,
                due_at,
                ..
            } => {
                self.scheduled_by.insert(
                    *timeout_id,
                    (event.version, event.position, event.recorded_at),
                );
                if *due_at > at {
                    format!("after {}: {key}", human_duration(*due_at - at))
                } else {
                    format!("at {}: {key}", rfc3339(*due_at))
                }
            }
            RecordedAction::Cancel { key } => format!("cancel {key}"),
            RecordedAction::Complete => "complete".to_owned(),
            RecordedAction::Fail { reason } => format!("fail: {reason}"),
        }
    }

    fn command(&self, id: CommandId) -> Value {
        self.commands.get(&id).cloned().unwrap_or(Value::Null)
    }
}

fn decode<T: serde::de::DeserializeOwned>(event: &RecordedEvent) -> Result<T> {
    serde::Deserialize::deserialize(&event.payload).map_err(|source| Error::Decode {
        stream_id: Some(event.stream_id.clone()),
        version: Some(event.version),
        event_type: event.event_type.clone(),
        source,
    })
}

/// How long a human reads JSON in a timeline line; the payload holds the whole value.
const SHORT_JSON: usize = 120;

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHORT_JSON) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn short_id(id: CommandId) -> String {
    let mut text = id.as_uuid().simple().to_string();
    text.truncate(8);
    text.push('…');
    text
}

pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// `1h30m`, `30s`, `2m0.5s`, `250ms`: the largest units first, zeros left out.
pub(super) fn human_duration(d: time::Duration) -> String {
    let total_ms = d.whole_milliseconds().max(0);
    if total_ms < 1_000 {
        return format!("{total_ms}ms");
    }
    let (hours, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1_000, rest % 1_000);
    let mut text = String::new();
    if hours > 0 {
        let _ = write!(text, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(text, "{minutes}m");
    }
    if seconds > 0 || millis > 0 {
        if millis > 0 {
            let _ = write!(text, "{seconds}.{:03}", millis);
            while text.ends_with('0') {
                text.pop();
            }
            text.push('s');
        } else {
            let _ = write!(text, "{seconds}s");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        let ms = time::Duration::milliseconds;
        assert_eq!(human_duration(ms(250)), "250ms");
        assert_eq!(human_duration(ms(30_000)), "30s");
        assert_eq!(human_duration(ms(90_000)), "1m30s");
        assert_eq!(human_duration(ms(5_400_000)), "1h30m");
        assert_eq!(human_duration(ms(1_500)), "1.5s");
        assert_eq!(human_duration(ms(-5)), "0ms");
    }

    #[test]
    fn long_json_is_cut_for_people() {
        let long = Value::String("x".repeat(500));
        let short = short_json(&long);
        assert_eq!(short.chars().count(), SHORT_JSON + 1);
        assert!(short.ends_with('…'));
        assert_eq!(short_json(&Value::Null), "null");
    }
}
