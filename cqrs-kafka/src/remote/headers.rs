//! The extension attributes of commands and replies on the bus (CloudEvents extensions, in
//! Kafka headers beside the `ce_` attributes of [`cloudevents`](crate::cloudevents)).
//!
//! | header | on | value |
//! |---|---|---|
//! | `ce_replyto` | command | the topic the outcome goes to |
//! | `ce_process` | command, reply | the sending process manager's `TYPE` |
//! | `ce_processinstance` | command, reply | its instance |
//! | `ce_commandid` | reply | the command id it answers (the command's `ce_id`) |

use uuid::Uuid;

use crate::consume::{HandleError, Incoming, BUS_NAMESPACE};

/// `ce_replyto`: where the target publishes the outcome.
pub const REPLY_TO: &str = "ce_replyto";
/// `ce_process`: the sending process manager's type.
pub const PROCESS: &str = "ce_process";
/// `ce_processinstance`: the sending instance.
pub const PROCESS_INSTANCE: &str = "ce_processinstance";
/// `ce_commandid`: the command a reply answers.
pub const COMMAND_ID: &str = "ce_commandid";
/// The `ce_type` of replies; the body is a
/// [`ReplyOutcome`](cqrs_core::process::ReplyOutcome) as JSON.
pub const REPLY_TYPE: &str = "cqrs.command.replied.v1";

/// The `ce_id` of the reply to command `command_id`: derived, so the same command answered
/// again (a redelivery, a crash before the offset's commit) publishes the same reply id.
///
/// ```
/// use cqrs_kafka::remote::reply_id;
/// use uuid::Uuid;
///
/// let command = Uuid::now_v7();
/// assert_eq!(reply_id(command), reply_id(command));
/// assert_ne!(reply_id(command), command);
/// ```
pub fn reply_id(command_id: Uuid) -> Uuid {
    Uuid::new_v5(&BUS_NAMESPACE, format!("reply\0{command_id}").as_bytes())
}

/// Header `name` of `incoming` as text: poison when it is missing or not UTF-8 (a command or
/// reply without it can never be answered or resolved).
pub(crate) fn required<'i>(incoming: &'i Incoming, name: &str) -> Result<&'i str, HandleError> {
    let bytes = incoming
        .message()
        .header(name)
        .ok_or_else(|| HandleError::poison(format_args!("the message has no {name} header")))?;
    std::str::from_utf8(bytes)
        .map_err(|e| HandleError::poison(format_args!("the {name} header is not utf-8: {e}")))
}
