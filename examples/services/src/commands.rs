//! [`Commands`]: the one [`CommandHandler`] the payment, inventory and shipping services share:
//! decode the contract, run the command on the aggregate it names, reply with the outcome (a
//! refusal as the order saga's [`ShopRejection`]).

use async_trait::async_trait;
use cqrs_core::process::ReplyOutcome;
use cqrs_core::{Aggregate, CommandContext, Repository};
use cqrs_kafka::consume::{HandleError, Incoming};
use cqrs_kafka::remote::{outcome_of, CommandHandler};
use cqrs_kafka::IntegrationEvent;
use cqrs_postgres::PgEventStore;
use quickstart::saga::commands::ShopRejection;

/// Runs contract `R`'s commands on aggregate `A`: `split` gives the aggregate's id and its
/// command, `reject` the saga's rejection for the aggregate's error.
pub(crate) struct Commands<A: Aggregate, R> {
    pub(crate) repository: Repository<A, PgEventStore>,
    pub(crate) split: fn(R) -> (String, A::Command),
    pub(crate) reject: fn(A::Error) -> ShopRejection,
}

#[async_trait]
impl<A, R> CommandHandler for Commands<A, R>
where
    A: Aggregate,
    R: IntegrationEvent + 'static,
{
    fn command_types(&self) -> Vec<&'static str> {
        vec![R::TYPE]
    }

    async fn execute(
        &self,
        command: &Incoming,
        context: CommandContext,
    ) -> Result<ReplyOutcome, HandleError> {
        let (id, command) = (self.split)(command.data::<R>()?);
        let result = self.repository.execute_with(&id, &command, context).await;
        outcome_of(result, self.reject)
    }
}
