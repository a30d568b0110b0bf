//! How a process manager's commands reach aggregates: the [`CommandDispatcher`] trait, with
//! [`Repository::dispatch`] for local aggregates. The event bus puts other services behind
//! the same trait.

use async_trait::async_trait;

use crate::{
    Aggregate, CommandContext, CommandError, Error, EventStore, Position, Repository, SnapshotStore,
};

/// Delivers a process manager's commands.
///
/// Users implement it once per process manager's command enum, matching each variant to the
/// repository (or remote service) it goes to:
///
/// ```
/// use async_trait::async_trait;
/// use cqrs_core::process::{CommandDispatcher, DispatchError, Dispatched};
/// use cqrs_core::testing::{Tally, TallyCommand, TallyError};
/// use cqrs_core::{CommandContext, CommandId, InMemoryEventStore, Repository};
///
/// /// What the process sends: which aggregate, and the command.
/// enum ShopCommand {
///     Stock { sku: String, command: TallyCommand },
///     Payment { order: String, command: TallyCommand },
/// }
///
/// /// Why an aggregate refused (here both are tallies).
/// #[derive(Debug)]
/// enum ShopRejection {
///     Tally(TallyError),
/// }
///
/// impl From<TallyError> for ShopRejection {
///     fn from(error: TallyError) -> Self {
///         ShopRejection::Tally(error)
///     }
/// }
///
/// struct Shop {
///     stock: Repository<Tally, InMemoryEventStore>,
///     payments: Repository<Tally, InMemoryEventStore>,
/// }
///
/// #[async_trait]
/// impl CommandDispatcher<ShopCommand> for Shop {
///     type Rejection = ShopRejection;
///
///     async fn dispatch(
///         &self,
///         command: &ShopCommand,
///         context: CommandContext,
///     ) -> Result<Dispatched, DispatchError<ShopRejection>> {
///         match command {
///             ShopCommand::Stock { sku, command } => self.stock.dispatch(sku, command, context).await,
///             ShopCommand::Payment { order, command } => {
///                 self.payments.dispatch(order, command, context).await
///             }
///         }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let shop = Shop { stock: Repository::new(store.clone()), payments: Repository::new(store) };
/// let reserve = ShopCommand::Stock { sku: "widget".into(), command: TallyCommand::Add(vec![2]) };
/// let step = CommandContext::new().command_id(CommandId::new());
/// // The same step delivered twice lands once.
/// let first = shop.dispatch(&reserve, step.clone()).await.expect("accepted");
/// let again = shop.dispatch(&reserve, step).await.expect("accepted");
/// let Dispatched::Accepted { duplicate: false, position } = first else { panic!("{first:?}") };
/// assert_eq!(again, Dispatched::Accepted { duplicate: true, position });
/// # });
/// ```
///
/// The context carries the command id the framework derived for the step: delivering it with
/// that id is what makes a step redone after a crash land once.
#[async_trait]
pub trait CommandDispatcher<C>: Send + Sync {
    /// The typed refusal, recorded in the journal and handed to `decide`.
    type Rejection;

    /// Delivers `command`. `Ok` once it is accepted (or forwarded); `Rejected` when the target
    /// refused it; `Failed` when it could not be delivered (retried if the error
    /// [is transient](Error::is_transient), else the trigger is parked).
    async fn dispatch(
        &self,
        command: &C,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<Self::Rejection>>;
}

/// What became of a dispatched command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatched {
    /// The target accepted it and recorded its events.
    Accepted {
        /// It had been accepted before under the same command id: nothing was done now.
        duplicate: bool,
        /// The feed position of its last event, if it recorded any.
        position: Option<Position>,
    },
    /// Handed on (to a bus, another service): the answer comes back as a subscribed event, and
    /// the command stays pending until an event carrying its command id (one the command
    /// produced) is routed to the instance. A worker that loads the instance afresh sends it
    /// again, with the same command id.
    Forwarded,
}

/// Why a command was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError<R> {
    /// The target refused it with its typed error: an input for `decide`.
    #[error("command rejected")]
    Rejected(R),
    /// It could not be delivered.
    #[error("command not delivered: {0}")]
    Failed(#[source] Error),
}

impl<A, S> Repository<A, S>
where
    A: Aggregate,
    S: EventStore + SnapshotStore,
{
    /// Runs `command` on aggregate `id` for a process manager: [`execute_with`](Self::execute_with)
    /// with the outcome as a [`Dispatched`], and the aggregate's error converted into the
    /// dispatcher's rejection type.
    pub async fn dispatch<R: From<A::Error>>(
        &self,
        id: &str,
        command: &A::Command,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<R>> {
        match self.execute_with(id, command, context).await {
            Ok(outcome) => Ok(Dispatched::Accepted {
                duplicate: outcome.duplicate,
                position: outcome.position,
            }),
            Err(CommandError::Rejected(error)) => Err(DispatchError::Rejected(R::from(error))),
            Err(CommandError::Store(error)) => Err(DispatchError::Failed(error)),
        }
    }
}
