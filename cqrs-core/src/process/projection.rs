//! [`ProcessManagerProjection`]: a process manager run as a projection on the one engine.

use std::marker::PhantomData;

use super::dispatch::CommandDispatcher;
use super::manager::ProcessManager;
use super::options::ProcessOptions;
use super::store::ProcessManagerStore;

/// Runs process manager `P` over store `S`, sending its commands through dispatcher `D`.
pub struct ProcessManagerProjection<P, S, D> {
    store: S,
    dispatcher: D,
    options: ProcessOptions,
    name: String,
    _process: PhantomData<fn() -> P>,
}

impl<P, S, D> ProcessManagerProjection<P, S, D>
where
    P: ProcessManager,
    S: ProcessManagerStore,
    D: CommandDispatcher<P::Command, Rejection = P::Rejection>,
{
    /// The projection: its name is `"process:{TYPE}"`.
    pub fn new(store: S, dispatcher: D, options: ProcessOptions) -> Self {
        Self {
            store,
            dispatcher,
            options,
            name: format!("process:{}", P::TYPE),
            _process: PhantomData,
        }
    }
}
