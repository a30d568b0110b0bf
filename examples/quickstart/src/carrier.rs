//! [`Carrier`]: a simulated carrier. It follows the feed as a projection and answers each
//! `ShipmentRequested` by scheduling the shipment, or stays silent for the orders a seeded rule
//! picks, so the saga's shipping timeout has something to do.

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner, ProjectionStore};
use cqrs_core::{
    Aggregate, CommandContext, CommandError, EventFilter, EventStore, RecordedEvent, Repository,
    SnapshotStore,
};
use uuid::Uuid;

use crate::shipping::{Shipment, ShipmentCommand, ShipmentError, ShipmentEvent};

/// Which requests a [`Carrier`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answers {
    /// Every one.
    All,
    /// None.
    None,
    /// All but about `silent_percent` in a hundred, picked by a hash of `seed` and the order
    /// id: the same orders on every run with the same seed.
    AllBut {
        /// The seed.
        seed: u64,
        /// How many in a hundred are never answered.
        silent_percent: u8,
    },
}

impl Answers {
    /// Whether the carrier answers the shipment of `order_id`.
    pub fn answers(&self, order_id: &str) -> bool {
        match *self {
            Answers::All => true,
            Answers::None => false,
            Answers::AllBut {
                seed,
                silent_percent,
            } => {
                let name = format!("{seed}\0{order_id}");
                let draw = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).as_u128() % 100;
                draw >= u128::from(silent_percent)
            }
        }
    }
}

/// A carrier that schedules requested shipments (projection `carrier`).
pub struct Carrier<S> {
    shipments: Repository<Shipment, S>,
    answers: Answers,
    name: String,
}

impl<S> Carrier<S>
where
    S: EventStore + SnapshotStore + Clone + 'static,
{
    /// The carrier `"parcel-co"` on `store`, answering as `answers` says.
    pub fn new(store: S, answers: Answers) -> Self {
        Self {
            shipments: Repository::new(store),
            answers,
            name: "parcel-co".to_owned(),
        }
    }

    /// Its runner on `store` (checkpoint, lease and dead letters under `carrier`), to spawn.
    pub fn runner(self) -> ProjectionRunner
    where
        S: ProjectionStore,
    {
        let store = self.shipments.store().clone();
        ProjectionRunner::for_store(self, &store)
    }
}

#[async_trait]
impl<S> Projection for Carrier<S>
where
    S: EventStore + SnapshotStore + Clone + 'static,
{
    fn name(&self) -> &str {
        "carrier"
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all()
            .category(Shipment::TYPE)
            .event_types(["ShipmentRequested"])
    }

    /// Answers each request of the batch. A request it cannot answer is rejected and the others
    /// are still answered: the runner counts every event it is not told of as applied.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut rejected = Vec::new();
        for event in events {
            let order_id = match event.decode() {
                Ok(ShipmentEvent::ShipmentRequested { order_id }) => order_id,
                Ok(_) => continue,
                // Written by a newer release: answered once it runs.
                Err(error) if error.is_transient() => {
                    return Err(ProjectionError::Transient(error.into()));
                }
                Err(error) => {
                    rejected.push(poison(event, error));
                    continue;
                }
            };
            if !self.answers.answers(&order_id) {
                continue;
            }
            let schedule = ShipmentCommand::Schedule {
                carrier: self.name.clone(),
            };
            // The command id comes from the request's event id: answering twice lands once.
            let context = CommandContext::caused_by(&event.metadata);
            match self
                .shipments
                .execute_with(&order_id, &schedule, context)
                .await
            {
                // Cancelled before the answer came: too late, as for a real carrier.
                Ok(_) | Err(CommandError::Rejected(ShipmentError::Cancelled)) => {}
                // Down for now, or racing other writers past the repository's retries: both
                // pass, so the request is answered again later, not parked.
                Err(CommandError::Store(error)) if error.is_transient() || error.is_conflict() => {
                    return Err(ProjectionError::Transient(error.into()));
                }
                Err(other) => rejected.push(poison(event, other)),
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

fn poison(event: &RecordedEvent, error: impl std::fmt::Display) -> cqrs_core::projection::Rejected {
    cqrs_core::projection::Rejected::new(event.position, error)
}

#[cfg(test)]
mod tests {
    use super::{Answers, Carrier};
    use crate::shipping::{Shipment, ShipmentCommand, ShipmentStatus};
    use cqrs_core::projection::{Projection, ProjectionError};
    use cqrs_core::{
        AppendEvents, AppendOutcome, CommandId, Error, EventFilter, ExpectedVersion, FeedBatch,
        InMemoryEventStore, NewEvent, Position, ReadAll, ReadStream, RecordedEvent, Repository,
        Snapshot, SnapshotStore, StreamId, Version,
    };

    /// The runner counts every event of a batch but the rejected ones as applied: a carrier
    /// that stopped at its first rejection left the rest of the batch unanswered for good.
    #[tokio::test]
    async fn a_rejected_request_leaves_the_others_of_its_batch_answered() {
        let store = InMemoryEventStore::new();
        let shipments = Repository::<Shipment, _>::new(store.clone());
        for order_id in ["o-1", "o-2"] {
            let request = ShipmentCommand::Request {
                order_id: order_id.to_owned(),
            };
            shipments
                .execute(order_id, &request)
                .await
                .expect("requested");
        }
        let mut batch = store
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .expect("the requests")
            .events;
        assert_eq!(batch.len(), 2);
        batch[0].payload = serde_json::json!({ "order": "o-1" }); // no order_id: poison

        let applied = Carrier::new(store.clone(), Answers::All)
            .apply(&batch)
            .await;

        match applied {
            Err(ProjectionError::Poison(rejected)) => {
                let at: Vec<Position> = rejected.iter().map(|r| r.position).collect();
                assert_eq!(at, [batch[0].position], "only the bad request is rejected");
            }
            other => panic!("expected the bad request rejected: {other:?}"),
        }
        let (second, _) = shipments.load("o-2").await.expect("load");
        assert_eq!(
            second.status,
            ShipmentStatus::Scheduled,
            "the next request is answered"
        );
    }

    /// The in-memory store, where every append loses a race (another writer always got there
    /// first), as under heavy contention on one shipment.
    #[derive(Clone)]
    struct Contended(InMemoryEventStore);

    #[async_trait::async_trait]
    impl AppendEvents for Contended {
        async fn append(
            &self,
            stream_id: &StreamId,
            expected: ExpectedVersion,
            _: Vec<NewEvent>,
        ) -> cqrs_core::Result<AppendOutcome> {
            Err(Error::Conflict {
                stream_id: stream_id.clone(),
                expected,
                actual: Version::new(99),
            })
        }
        async fn command_outcome(
            &self,
            command_id: CommandId,
        ) -> cqrs_core::Result<Option<AppendOutcome>> {
            self.0.command_outcome(command_id).await
        }
    }

    #[async_trait::async_trait]
    impl ReadStream for Contended {
        async fn read_stream(
            &self,
            stream_id: &StreamId,
            from: Version,
            limit: usize,
        ) -> cqrs_core::Result<Vec<RecordedEvent>> {
            self.0.read_stream(stream_id, from, limit).await
        }
    }

    #[async_trait::async_trait]
    impl ReadAll for Contended {
        async fn read_all(
            &self,
            after: Position,
            limit: usize,
            filter: &EventFilter,
        ) -> cqrs_core::Result<FeedBatch> {
            self.0.read_all(after, limit, filter).await
        }
        async fn head(&self) -> cqrs_core::Result<Position> {
            self.0.head().await
        }
    }

    #[async_trait::async_trait]
    impl SnapshotStore for Contended {
        async fn save_snapshot(&self, snapshot: Snapshot) -> cqrs_core::Result<()> {
            self.0.save_snapshot(snapshot).await
        }
        async fn load_snapshot(&self, stream_id: &StreamId) -> cqrs_core::Result<Option<Snapshot>> {
            self.0.load_snapshot(stream_id).await
        }
    }

    /// A conflict left after the repository's retries is contention, which passes: the request
    /// is answered again later, not parked for an operator (the order would never ship).
    #[tokio::test]
    async fn a_request_that_keeps_losing_races_is_retried_not_parked() {
        let store = InMemoryEventStore::new();
        let request = ShipmentCommand::Request {
            order_id: "o-1".to_owned(),
        };
        Repository::<Shipment, _>::new(store.clone())
            .execute("o-1", &request)
            .await
            .expect("requested");
        let batch = store
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .expect("the request")
            .events;

        let applied = Carrier::new(Contended(store), Answers::All)
            .apply(&batch)
            .await;

        assert!(
            matches!(applied, Err(ProjectionError::Transient(_))),
            "{applied:?}"
        );
    }

    /// A request a newer release wrote (its schema version ahead of this code's) waits for
    /// that release: parked, the order would never ship without an operator.
    #[tokio::test]
    async fn a_request_written_by_newer_code_is_retried_not_parked() {
        use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
        let store = InMemoryEventStore::new();
        store
            .append(
                &StreamId::new("shipment-o-1").expect("id"),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    "ShipmentRequested",
                    9,
                    serde_json::json!({ "order_id": "o-1", "express": true }),
                )],
            )
            .await
            .expect("append");
        let batch = store
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .expect("the request")
            .events;
        let applied = Carrier::new(store, Answers::All).apply(&batch).await;
        assert!(
            matches!(applied, Err(ProjectionError::Transient(_))),
            "{applied:?}"
        );
    }

    #[test]
    fn a_seeded_rule_silences_about_its_share_the_same_orders_every_time() {
        let rule = Answers::AllBut {
            seed: 7,
            silent_percent: 10,
        };
        let silent = (0..1000).filter(|i| !rule.answers(&i.to_string())).count();
        assert!((60..140).contains(&silent), "{silent} of 1000 silent");
        let again = (0..1000).filter(|i| !rule.answers(&i.to_string())).count();
        assert_eq!(silent, again);
        assert!(Answers::All.answers("1") && !Answers::None.answers("1"));
    }
}
