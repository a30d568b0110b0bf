//! The operations data layer: what the store knows, as typed, serde-serializable values.
//!
//! [`Inspector`] wraps a [`PgEventStore`](cqrs_postgres::PgEventStore) and answers one question per method; each answer is a
//! plain data type of this module (one concept per file), which the command line prints as a
//! table or JSON and the web console renders. Actions (retry, skip) go through the core's
//! [`DeadLetterStore`](cqrs_core::projection::DeadLetterStore) requests, so the leading runner
//! re-drives them: nothing here applies events itself.
//!
//! Positions are written `major/minor` (as [`Position`](cqrs_core::Position) displays and
//! parses) and times in RFC 3339.

mod bus_letters;
mod correlation;
mod events;
mod horizon;
mod inspector;
pub(crate) use inspector::before;
mod letters;
mod overview;
mod processes;
pub(crate) mod serde_pos;
mod tail;

pub(crate) use bus_letters::parse_message;
#[doc(inline)]
pub use bus_letters::BusLetterView;
#[doc(inline)]
pub use correlation::Correlation;
#[doc(inline)]
pub use events::{EventView, StreamView};
#[doc(inline)]
pub use horizon::{HorizonHolderView, HorizonView};
#[doc(inline)]
pub use inspector::Inspector;
#[doc(inline)]
pub use letters::{DeadLetterDetail, DeadLetterView, LetterFilter, RedriveRequest};
#[doc(inline)]
pub use overview::{
    position_label, BreakerView, LeaderState, LeaseView, Overview, SubscriberKind, SubscriberView,
};
#[doc(inline)]
pub use processes::{InstanceDetail, InstanceFilterView, InstanceView, TimelineEntryView};
#[doc(inline)]
pub use tail::{TailPage, TailQuery};
