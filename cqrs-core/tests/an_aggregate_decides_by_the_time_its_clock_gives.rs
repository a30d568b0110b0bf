//! An aggregate that decides by the time reads it from a [`Clock`] in its services: the system
//! clock in production (`Repository::new`, since a `SharedClock` defaults to it), a
//! [`TestClock`] that the test sets and advances.

use std::time::Duration;

use cqrs_core::testing::TestClock;
use cqrs_core::{
    Aggregate, AggregateFixture, Clock, DomainEvent, InMemoryEventStore, Repository, SharedClock,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const LOAN: Duration = Duration::from_secs(14 * 24 * 3600);

/// A book on loan: due 14 days after it was lent.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Loan {
    due: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum LoanEvent {
    Lent { due: OffsetDateTime },
    Returned { late: bool },
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the book is not on loan")]
struct NotLent;

enum LoanCommand {
    Lend,
    Return,
}

impl Aggregate for Loan {
    const TYPE: &'static str = "loan";
    type Command = LoanCommand;
    type Event = LoanEvent;
    type Error = NotLent;
    type Services = SharedClock;

    fn apply(&mut self, event: &LoanEvent) {
        self.due = match event {
            LoanEvent::Lent { due } => Some(*due),
            LoanEvent::Returned { .. } => None,
        };
    }

    async fn handle(
        &self,
        command: &LoanCommand,
        clock: &SharedClock,
    ) -> Result<Vec<LoanEvent>, NotLent> {
        Ok(match command {
            LoanCommand::Lend => vec![LoanEvent::Lent {
                due: clock.now() + LOAN,
            }],
            LoanCommand::Return => {
                let due = self.due.ok_or(NotLent)?;
                vec![LoanEvent::Returned {
                    late: clock.now() > due,
                }]
            }
        })
    }
}

#[tokio::test]
async fn a_return_after_the_due_date_is_late_by_the_test_clock() {
    let clock = TestClock::new();
    let due = TestClock::START + LOAN;
    AggregateFixture::<Loan>::new(SharedClock::new(clock.clone()))
        .when(&LoanCommand::Lend)
        .await
        .then_expect_events([LoanEvent::Lent { due }]);

    clock.advance(LOAN);
    AggregateFixture::<Loan>::new(SharedClock::new(clock.clone()))
        .given([LoanEvent::Lent { due }])
        .when(&LoanCommand::Return)
        .await
        .then_expect_events([LoanEvent::Returned { late: false }]);

    clock.advance(Duration::from_secs(1));
    let loans = Repository::<Loan, _>::with_services(
        InMemoryEventStore::new(),
        SharedClock::new(clock.clone()),
    );
    loans.execute("1", &LoanCommand::Lend).await.expect("lent");
    clock.set(TestClock::START + 3 * LOAN);
    let outcome = loans
        .execute("1", &LoanCommand::Return)
        .await
        .expect("returned");
    assert_eq!(outcome.events, [LoanEvent::Returned { late: true }]);
}

#[tokio::test]
async fn the_default_clock_is_the_systems() {
    let loans = Repository::<Loan, _>::new(InMemoryEventStore::new());
    let before = OffsetDateTime::now_utc();
    let outcome = loans.execute("2", &LoanCommand::Lend).await.expect("lent");
    let [LoanEvent::Lent { due }] = outcome.events[..] else {
        panic!("{:?}", outcome.events)
    };
    assert!(due >= before + LOAN && due <= OffsetDateTime::now_utc() + LOAN);
}
