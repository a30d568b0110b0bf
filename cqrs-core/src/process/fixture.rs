//! [`ProcessFixture`]: given / when / then tests for a process manager, with time controlled.

use std::marker::PhantomData;

use super::manager::ProcessManager;

/// Given inputs, when an event or a timeout, then expect commands, timeouts, completion.
pub struct ProcessFixture<P: ProcessManager> {
    _process: PhantomData<P>,
}
