//! [`AggregateFixture`]: given / when / then tests for aggregates, with no store at all.

use std::fmt::Debug;

use crate::{Aggregate, DomainEvent};

/// A given / when / then test of one aggregate.
///
/// `given` events are folded with `apply`, `when` runs `handle`, and the `then_*` methods assert
/// on the outcome. Asserting on events also checks that each expected event survives the trip
/// through its stored JSON form, so an `event_type()` that does not match the serde variant is
/// caught here rather than in production.
///
/// ```
/// # use cqrs_core::{Aggregate, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Default, Serialize, Deserialize)]
/// # struct Counter { value: u64 }
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// # enum CounterEvent { Incremented { by: u64 } }
/// # #[derive(Debug, PartialEq, thiserror::Error)] #[error("too much")] struct TooMuch;
/// # impl Aggregate for Counter {
/// #     const TYPE: &'static str = "counter";
/// #     type Command = u64; type Event = CounterEvent; type Error = TooMuch; type Services = ();
/// #     fn apply(&mut self, CounterEvent::Incremented { by }: &CounterEvent) { self.value += by }
/// #     async fn handle(&self, by: &u64, _: &()) -> Result<Vec<CounterEvent>, TooMuch> {
/// #         if self.value + by > 100 { Err(TooMuch) } else { Ok(vec![CounterEvent::Incremented { by: *by }]) }
/// #     }
/// # }
/// use cqrs_core::AggregateFixture;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// AggregateFixture::<Counter>::new(())
///     .given([CounterEvent::Incremented { by: 90 }])
///     .when(&5)
///     .await
///     .then_expect_events([CounterEvent::Incremented { by: 5 }]);
///
/// AggregateFixture::<Counter>::new(())
///     .given([CounterEvent::Incremented { by: 90 }])
///     .when(&20)
///     .await
///     .then_expect_error(TooMuch);
/// # });
/// ```
#[must_use = "a fixture does nothing until `when` is awaited"]
pub struct AggregateFixture<A: Aggregate> {
    state: A,
    services: A::Services,
}

impl<A: Aggregate> AggregateFixture<A> {
    /// A fixture starting from the initial state, with `services` for `handle`.
    pub fn new(services: A::Services) -> Self {
        Self {
            state: A::default(),
            services,
        }
    }

    /// Applies past events to the state.
    pub fn given(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        for event in events {
            self.state.apply(&event);
        }
        self
    }

    /// Runs the command.
    pub async fn when(self, command: &A::Command) -> Then<A> {
        let result = self.state.handle(command, &self.services).await;
        Then {
            state: self.state,
            result,
        }
    }
}

/// The outcome of [`AggregateFixture::when`], to assert on.
#[must_use = "assert on the outcome with a `then_*` method"]
pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A> {
    /// Asserts the command produced exactly `expected`, and that each survives the JSON round
    /// trip. Returns the state with the events applied.
    ///
    /// # Panics
    /// When the outcome differs: this is a test assertion.
    #[track_caller]
    pub fn then_expect_events(mut self, expected: impl IntoIterator<Item = A::Event>) -> A
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error:?}"),
        };
        assert_eq!(events, expected, "the command produced other events");
        for event in &events {
            let payload = event
                .encode()
                .unwrap_or_else(|e| panic!("{event:?} does not encode: {e}"));
            let back = A::Event::decode(event.event_type(), payload)
                .unwrap_or_else(|e| panic!("{event:?} does not decode: {e}"));
            assert_eq!(&back, event, "the event changes in its JSON round trip");
            self.state.apply(event);
        }
        self.state
    }

    /// Asserts the command failed with `expected`.
    ///
    /// # Panics
    /// When the outcome differs: this is a test assertion.
    #[track_caller]
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Event: Debug,
        A::Error: PartialEq + Debug,
    {
        match self.result {
            Ok(events) => {
                panic!("expected error {expected:?}, but the command produced {events:?}")
            }
            Err(error) => assert_eq!(error, expected, "the command failed otherwise"),
        }
    }

    /// Asserts the command failed, and returns its error for further checks.
    ///
    /// # Panics
    /// When the command succeeded: this is a test assertion.
    #[track_caller]
    pub fn then_expect_failure(self) -> A::Error
    where
        A::Event: Debug,
    {
        match self.result {
            Ok(events) => panic!("expected the command to fail, but it produced {events:?}"),
            Err(error) => error,
        }
    }

    /// The raw outcome and the state before the command's events.
    pub fn into_parts(self) -> (A, Result<Vec<A::Event>, A::Error>) {
        (self.state, self.result)
    }
}
