//! For store implementers: the checks every backend runs before it writes, and the circuit
//! breaker a runner or sink puts in front of a failing dependency. Application code does not
//! need this module.

pub use crate::projection::breaker::CircuitBreaker;
pub use crate::projection::runner::upcast::{upcast_in_order, Upcast};
pub use crate::validate::{
    check_batch, check_event_type, BatchCheck, DEFAULT_MAX_PAYLOAD_BYTES, MAX_EVENT_TYPE_LEN,
};
