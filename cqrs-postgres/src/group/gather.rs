//! [`gather`]: what a lane does before it takes a group: lets the tasks one scheduler turn
//! from their next append (or load) queue it, so it rides in this group rather than the next.
//!
//! When a group's replies wake its writers, the lane wakes with them. Taking the next group at
//! once would leave most of them for the group after: each is a turn from its next append
//! (deciding its next command on a cached state, then a send). So the lane first lets the
//! runtime run the other ready tasks, a few turns at most, and only while each turn brings
//! more and the queue does not yet hold a full group. With a lone writer the lane yields once
//! and finds nothing more; with many it stops at a full group, since waiting longer only delays
//! appends that could not join this group anyway (`benchmarks/README.md`: gathering without
//! that bound cost a third at 128 writers). The append lane (`lane.rs`) and the load lane
//! (`loads.rs`) both gather.
//!
//! A turn lasts as long as the other ready tasks take to reach their next `.await`: on a
//! runtime busy with other work it is longer. So turns are few, and gathering stops at the
//! first turn that brings nothing.

use std::collections::VecDeque;

use tokio::sync::mpsc;

/// The most scheduler turns a lane lets pass before it takes a group.
pub(super) const TURNS: usize = 4;

/// Moves every queued item into `waiting`, then yields to the runtime up to [`TURNS`] times,
/// while each turn brings more items and `waiting` holds fewer than `full`.
pub(super) async fn gather<T>(
    requests: &mut mpsc::UnboundedReceiver<T>,
    waiting: &mut VecDeque<T>,
    full: usize,
) {
    drain(requests, waiting);
    for _ in 0..TURNS {
        if waiting.len() >= full {
            return;
        }
        let before = waiting.len();
        tokio::task::yield_now().await;
        drain(requests, waiting);
        if waiting.len() == before {
            return;
        }
    }
}

/// Moves every item already queued into `waiting`, in arrival order, without waiting.
fn drain<T>(requests: &mut mpsc::UnboundedReceiver<T>, waiting: &mut VecDeque<T>) {
    while let Ok(request) = requests.try_recv() {
        waiting.push_back(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A current-thread runtime, where "ready" and "a turn" are exact.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    }

    #[test]
    fn writers_ready_to_send_join_the_group_being_gathered() {
        runtime().block_on(async {
            let (send, mut requests) = mpsc::unbounded_channel();
            let mut waiting = VecDeque::new();
            send.send(0).expect("the receiver is alive");
            for writer in 1..=5 {
                let send = send.clone();
                tokio::spawn(async move {
                    let _ = send.send(writer);
                });
            }
            gather(&mut requests, &mut waiting, 64).await;
            assert_eq!(waiting, [0, 1, 2, 3, 4, 5]);
        });
    }

    #[test]
    fn a_writer_that_keeps_sending_is_gathered_for_a_bounded_number_of_turns() {
        runtime().block_on(async {
            let (send, mut requests) = mpsc::unbounded_channel();
            let mut waiting = VecDeque::new();
            tokio::spawn(async move {
                for item in 0.. {
                    if send.send(item).is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            });
            gather(&mut requests, &mut waiting, 64).await;
            assert_eq!(waiting.len(), TURNS);
        });
    }

    #[test]
    fn a_full_group_is_taken_without_waiting_for_more() {
        runtime().block_on(async {
            let (send, mut requests) = mpsc::unbounded_channel();
            let mut waiting = VecDeque::new();
            for item in 0..3 {
                send.send(item).expect("the receiver is alive");
            }
            tokio::spawn(async move {
                let _ = send.send(99);
            });
            gather(&mut requests, &mut waiting, 3).await;
            assert_eq!(
                waiting,
                [0, 1, 2],
                "the ready writer's append waits for the next group"
            );
        });
    }

    #[test]
    fn a_lone_append_is_taken_after_one_turn_that_brings_nothing() {
        runtime().block_on(async {
            let (send, mut requests) = mpsc::unbounded_channel();
            let mut waiting = VecDeque::new();
            send.send(7).expect("the receiver is alive");
            gather(&mut requests, &mut waiting, 64).await;
            assert_eq!(waiting, [7]);
            drop(send);
        });
    }
}
