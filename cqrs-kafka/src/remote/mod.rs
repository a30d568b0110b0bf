//! Request / reply: a process manager's commands sent to another service's aggregates through
//! the bus, with their outcome coming back as the process's input, so the same orchestrated
//! saga runs with local or remote aggregates.
//!
//! ```text
//!  service A (requester)                          service B (target)
//!  process manager --BusDispatcher--> command topic --CommandConsumer--> Repository::execute_with
//!        ^                                                                     |
//!        |  Input::Accepted / Rejected                                         v
//!  engine <-- CommandReplied in A's log <--ReplyInbox-- reply topic <-- the outcome, published
//! ```
//!
//! - [`BusDispatcher`] (A) publishes the command as a CloudEvent to the target's command topic:
//!   key = the target aggregate's id, `ce_id` = the step's derived command id, `ce_replyto` =
//!   A's reply topic, the process and instance that sent it, correlation, causation and
//!   `traceparent`; it returns [`Dispatched::Forwarded`](cqrs_core::process::Dispatched) once the
//!   broker acknowledged.
//! - [`CommandConsumer`] (B) executes it with command id = `ce_id`, so a redelivered (or
//!   re-sent) command lands once, then publishes the outcome (accepted, or the typed rejection
//!   as JSON) to `ce_replyto`, under a reply id derived from the command id: a crash between
//!   the two executes again as a duplicate and publishes the same reply. A command it can
//!   never run is parked, and the sender is told first
//!   ([`ReplyOutcome::Failed`](cqrs_core::process::ReplyOutcome::Failed), with the reason).
//! - [`ReplyInbox`] (A) records the reply in A's own log as a
//!   [`CommandReplied`](cqrs_core::process::CommandReplied) (one per command id), which the
//!   process manager's engine resolves into `Input::Accepted` / `Input::Rejected` once; a
//!   `Failed` word parks the instance with the target's reason until the answer comes.
//!
//! The parts: `headers` (the extension attributes), `dispatcher`, `command_consumer`, `inbox`.

mod command_consumer;
mod dispatcher;
mod headers;
mod inbox;

#[doc(inline)]
pub use command_consumer::{outcome_of, CommandConsumer, CommandHandler};
#[doc(inline)]
pub use dispatcher::{BusDispatcher, Request};
#[doc(inline)]
pub use headers::{reply_id, COMMAND_ID, PROCESS, PROCESS_INSTANCE, REPLY_TO, REPLY_TYPE};
#[doc(inline)]
pub use inbox::ReplyInbox;
