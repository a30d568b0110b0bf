//! Chaos toward PostgreSQL: real network faults (a Toxiproxy proxy of each test's own between
//! the store and the shared PostgreSQL) and a real fast-shutdown restart (a PostgreSQL of the
//! test's own), while writers append and the projection runner applies the feed to an
//! in-memory read model. In every case: callers get typed, transient errors; no append is half
//! written (each one's events are all there or none, stream versions have no hole); every
//! append a caller saw succeed is there once; the projection resumes by itself and the read
//! model equals a fold of the store from scratch; nothing panics, nothing is stuck.
//!
//! Each scenario prints what it did (toxics, caller errors, projection retries, recovery
//! times) and asserts the faults really happened. `CHAOS_SOAK_SECS=300` runs each fault phase
//! for five minutes instead of a few seconds (the soak mode; not in CI).

use std::time::Duration;

use cqrs_core::projection::{ProjectionHandle, ProjectionState};
use cqrs_core::ReadAll;
use cqrs_postgres::{GroupCommit, PgEventStore};
use integration_tests::chaos::{
    assert_appends_are_whole, assert_tally_is_the_fold, chaos_store, fault_time, soaking,
    store_beside, through_port, upstream_of, FreezingRelay, Ledger, PgServer, RunnerWatch,
    ScenarioLog, Tally, Writers,
};
use integration_tests::toxiproxy::{Direction, Proxy, Toxic, Toxiproxy, ToxiproxyError};
use integration_tests::*;
use sqlx::Connection;
use tokio::time::Instant;

/// How soon after PostgreSQL is back the writers append again and the projection has caught
/// up with what was written before: the retry policy caps its backoff at 500 ms and the pool
/// reconnects on its next acquire, so about a second here; 15 s is the slack for a slow and
/// busy CI machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

/// The restart scenario's server: its port and work directory, apart from every other's.
const PG_PORT: u16 = 54393;
const PG_WORKDIR: &str = "/var/tmp/cqrs-pg-chaos-restart";

/// A proxy of the test's own toward the shared PostgreSQL, and a store in a fresh schema
/// connected through it (the password stays in the URL, never in the output).
async fn proxied_store(name: &str) -> (Proxy, PgEventStore) {
    let url = database_url();
    let proxy = Toxiproxy::from_env()
        .create_proxy(&unique_name(name), &upstream_of(&url))
        .expect("create a proxy toward PostgreSQL");
    let store = chaos_store(&through_port(&url, proxy.port()), 8).await;
    (proxy, store)
}

/// The end of every scenario: writers stopped, the projection caught up with the whole feed
/// (bounded by [`PATIENCE`]), then every promise checked on the store and the read model.
async fn settle_and_check(
    log: &ScenarioLog,
    store: &PgEventStore,
    writers: Writers,
    handle: ProjectionHandle,
    tally: &Tally,
) -> Ledger {
    let ledger = writers.stop().await;
    let status = wait_caught_up(&handle, store).await;
    assert!(status.is_ready(), "{status:?}");
    handle.shutdown().await;
    let events = all_events(store).await;
    let check = assert_appends_are_whole(&events, &ledger);
    assert_tally_is_the_fold(tally, &events);
    log.say(&format!(
        "checked: {} events in {} appends, {} appends succeeded, {} failed ({} of them \
         recorded whole, {} left nothing), {} conflicts after an ambiguous commit; read model = \
         fold over {} streams, {} redeliveries skipped, 0 holes",
        check.events,
        check.appends,
        ledger.succeeded.len(),
        ledger.failed.len(),
        check.failed_but_recorded,
        check.failed_and_absent,
        ledger.conflicts,
        tally.streams().len(),
        tally.redelivered(),
    ));
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter_during_appends_and_a_projection_lose_and_double_nothing() {
    let faults = fault_time(Duration::from_secs(3));
    let log = ScenarioLog::new("latency", &format!("latency for {faults:?}"));
    let (proxy, store) = proxied_store("pg-latency").await;
    let tally = Tally::new("tally");
    let handle = pg_runner(tally.clone(), &store, quick_options()).spawn();
    let writers = Writers::start(&store, "lat", 3, 4, 11, Duration::from_millis(2));
    writers.wait_succeeded(10).await;

    let down = Toxic::Latency {
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(20),
    };
    let up = Toxic::Latency {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(5),
    };
    proxy
        .add("slow-down", Direction::Downstream, &down)
        .unwrap();
    proxy.add("slow-up", Direction::Upstream, &up).unwrap();
    log.say(&format!("toxics on: {down} downstream, {up} upstream"));
    let before = writers.succeeded();
    let mut watch = RunnerWatch::default();
    watch.watch_for(&handle, faults).await;
    let during = writers.succeeded() - before;
    proxy.clear().unwrap();
    log.say(&format!(
        "toxics off: {during} appends succeeded and {} failed while they were on",
        writers.failed()
    ));

    let ledger = settle_and_check(&log, &store, writers, handle, &tally).await;
    log.say(&format!(
        "slowest append {:?}; caller errors: {:?}; projection errors: {}",
        ledger.slowest,
        ledger.transient_errors.first(),
        watch.retries.len()
    ));
    assert!(during > 0, "appends went on under latency");
    assert!(
        ledger.slowest >= Duration::from_millis(40),
        "the latency was really applied: the slowest append took {:?}",
        ledger.slowest
    );
    drop_schema(&store).await;
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_or_cut_mid_statement_leave_no_partial_append_and_the_projection_resumes()
{
    let faults = fault_time(Duration::from_secs(4));
    let log = ScenarioLog::new(
        "reset",
        &format!("rounds of resets and cuts for {faults:?}"),
    );
    let (proxy, store) = proxied_store("pg-reset").await;
    let tally = Tally::new("tally");
    let handle = pg_runner(tally.clone(), &store, quick_options()).spawn();
    let writers = Writers::start(&store, "rst", 3, 4, 22, Duration::from_millis(2));
    writers.wait_succeeded(10).await;

    // Rounds of three faults, each held a short while, with the network clean in between:
    // connections reset at once (reset_peer), connections going silent and closed after
    // 300 ms (timeout), and connections closed once 2 KB went up (limit_data: a statement cut
    // mid-way through its bytes).
    let toxics = [
        (
            Direction::Downstream,
            Toxic::ResetPeer {
                after: Duration::ZERO,
            },
            Duration::from_millis(200),
        ),
        (
            Direction::Upstream,
            Toxic::Timeout {
                after: Duration::from_millis(300),
            },
            Duration::from_millis(500),
        ),
        (
            Direction::Upstream,
            Toxic::LimitData { bytes: 2048 },
            Duration::from_millis(400),
        ),
    ];
    let mut watch = RunnerWatch::default();
    let until = Instant::now() + faults;
    let mut rounds = 0;
    while Instant::now() < until {
        rounds += 1;
        for (direction, toxic, hold) in &toxics {
            proxy.add("fault", *direction, toxic).unwrap();
            watch.watch_for(&handle, *hold).await;
            proxy.remove("fault").unwrap();
            watch.watch_for(&handle, Duration::from_millis(300)).await;
        }
    }
    log.say(&format!(
        "{rounds} rounds of: {}",
        toxics
            .iter()
            .map(|(d, t, hold)| format!("{t} {d:?} for {hold:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    log.say(&format!(
        "while they were on: {} appends succeeded, {} failed; the runner reported {} distinct \
         errors (retrying seen: {}, breaker opened: {}), e.g. {:?}",
        writers.succeeded(),
        writers.failed(),
        watch.retries.len(),
        watch.retrying_seen,
        watch.breaker_opened,
        watch.sample_error,
    ));

    let ledger = settle_and_check(&log, &store, writers, handle, &tally).await;
    log.say(&format!(
        "caller errors: {} transient, e.g. {:?}",
        ledger.transient_errors.len(),
        ledger.transient_errors.first()
    ));
    assert!(
        !ledger.transient_errors.is_empty(),
        "the faults reached the callers as typed transient errors"
    );
    assert!(
        !watch.retries.is_empty(),
        "the faults reached the projection, which retried"
    );
    drop_schema(&store).await;
    drop(proxy);
}

/// A network gone silent: PostgreSQL's answers stop coming and nothing is closed (a failover
/// that left the old address dead, a dropped NAT mapping, a host gone without a word). Every
/// call to the store must still end within its bound, as a transient error, and once the
/// network is back the writers and the projection go on by themselves, with nothing lost,
/// doubled or half written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_gone_silent_ends_every_call_within_its_bound_and_everything_resumes_after() {
    // The store's bounds: an answer within 500 ms, a connection within 500 ms, a group within
    // 300 ms (its lane waits 1.6 s for a statement: twice that, and a second). The worst
    // call: a group's statement unanswered and its lookup (1.6 s each, 3.2 s at most in all
    // for a writer in the group), then the append on its own (500 ms to connect, 500 ms to
    // answer), about 4.2 s in all.
    const ANSWER: Duration = Duration::from_millis(500);
    const CALL_BOUND: Duration = Duration::from_secs(6);
    let faults = fault_time(Duration::from_secs(11)).max(CALL_BOUND + Duration::from_secs(5));
    let log = ScenarioLog::new(
        "silence",
        &format!("no byte from PostgreSQL, nothing closed, for {faults:?}"),
    );
    let (proxy, base) = proxied_store("pg-silent").await;
    // The store's own pool, which checks a connection only after it sat idle: most calls
    // meet the silence in their statements, not in the pool's check.
    let pool = cqrs_postgres::pool_options()
        .max_connections(8)
        .acquire_timeout(Duration::from_millis(500))
        .connect(&through_port(&database_url(), proxy.port()))
        .await
        .expect("a pool through the proxy");
    let store = PgEventStore::new(pool)
        .with_schema(base.schema().clone())
        .with_answer_timeout(ANSWER)
        .with_group_commit(GroupCommit::default().timeout(Duration::from_millis(300)));
    let tally = Tally::new("tally");
    let handle = pg_runner(tally.clone(), &store, quick_options()).spawn();
    let writers = Writers::start(&store, "sil", 3, 4, 44, Duration::from_millis(2));
    writers.wait_succeeded(10).await;
    wait_for_status(&handle, PATIENCE, "the projection to apply", |s| {
        s.applied > 0
    })
    .await;

    let silence = Toxic::Timeout {
        after: Duration::ZERO,
    };
    proxy
        .add("silence", Direction::Downstream, &silence)
        .unwrap();
    log.say(&format!("toxic on: {silence} downstream"));
    let failed = writers.failed();
    let mut watch = RunnerWatch::default();
    let mut longest = Duration::ZERO;
    let until = Instant::now() + faults;
    // The runner's errors seen by the time its calls in flight at the start are bounded: it
    // must go on reporting new ones after that, not wait in one call.
    let settled = Instant::now() + CALL_BOUND;
    let mut errors_when_settled = None;
    while Instant::now() < until {
        watch.sample(&handle);
        if Instant::now() >= settled {
            errors_when_settled.get_or_insert(watch.retries.len());
        }
        longest = longest.max(writers.longest_call_in_flight());
        assert!(
            longest <= CALL_BOUND,
            "a call has waited {longest:?} on a silent network, over its bound of {CALL_BOUND:?}"
        );
        // Sampling pace while the fault is held on, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let back = Instant::now();
    proxy.remove("silence").unwrap();
    log.say(&format!(
        "toxic off: {} calls failed while it was on; the longest call waited {longest:?}; the \
         runner reported {} distinct errors, e.g. {:?}",
        writers.failed() - failed,
        watch.retries.len(),
        watch.sample_error
    ));
    assert!(
        writers.failed() > failed,
        "the silence reached the writers as failed calls"
    );
    assert!(
        watch.retries.len() > errors_when_settled.unwrap_or(usize::MAX),
        "the projection went on failing and retrying through the silence, not waiting in a \
         call: {} errors {CALL_BOUND:?} in, {} at the end",
        errors_when_settled.unwrap_or_default(),
        watch.retries.len()
    );

    eventually(RECOVERY_BOUND, "an append after the silence", || async {
        writers.last_success().filter(|t| *t > back)
    })
    .await;
    let ledger = settle_and_check(&log, &store, writers, handle, &tally).await;
    log.say(&format!(
        "appends again {:?} after the network was back; caller errors: {} transient, e.g. {:?}",
        back.elapsed(),
        ledger.transient_errors.len(),
        ledger.transient_errors.first()
    ));
    drop_schema(&store).await;
    drop(proxy);
}

/// The `LISTEN` connection cut (a server restarting) while a runner waits for a wake-up, and
/// new connections slow to come back for about an answer timeout: an append committed in the
/// gap reached no listener, so the store must wake the runner once it listens again, whether
/// its quiet period's question came up during the reconnection or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_connection_cut_and_slow_to_come_back_wakes_its_runner_once_it_listens() {
    let log = ScenarioLog::new(
        "cut",
        "every connection open at the fault closed; new ones held back for an answer timeout",
    );
    let WaitingRunner {
        relay,
        writer,
        store,
        handle,
    } = WaitingRunner::start("cut-1").await;

    for round in 2..=4 {
        relay.cut_current_and_hold_new(ANSWER);
        let fault = Instant::now();
        // Committed while nobody listens.
        append_one(&writer, &format!("cut-{round}")).await;
        wait_for_status(
            &handle,
            RECOVERY_BOUND,
            "the event appended in the gap, by the wake-up of listening again (the next poll \
             is minutes away)",
            |s| s.applied == round,
        )
        .await;
        log.say(&format!(
            "round {round}: the event appended in the gap applied {:?} after the cut",
            fault.elapsed()
        ));
    }
    handle.shutdown().await;
    drop_schema(&store).await;
    drop(relay);
}

/// A failover that left the old address dead, under load: every connection open at that
/// moment (the pool's, the group commit lane's, the notifier's, the `LISTEN` one) goes silent
/// for good and is never closed, while new connections reach the server. Writers and the
/// projection must go on within a few answer timeouts, not when the operating system gives
/// the old sockets up (minutes), with nothing lost, doubled or half written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_left_every_open_connection_silent_is_survived_within_a_few_answer_timeouts(
) {
    const ANSWER: Duration = Duration::from_millis(500);
    let log = ScenarioLog::new(
        "failover",
        "every connection open at the fault silent for good, nothing closed; new ones pass",
    );
    let url = database_url();
    let relay = FreezingRelay::start(&upstream_of(&url))
        .await
        .expect("a relay toward PostgreSQL");
    let direct = chaos_store(&url, 2).await;
    let pool = cqrs_postgres::pool_options()
        .max_connections(8)
        .acquire_timeout(ANSWER)
        .connect(&through_port(&url, relay.port()))
        .await
        .expect("a pool through the relay");
    let store = PgEventStore::new(pool)
        .with_schema(direct.schema().clone())
        .with_answer_timeout(ANSWER)
        .with_group_commit(GroupCommit::default().timeout(Duration::from_millis(300)));
    let tally = Tally::new("tally");
    let handle = pg_runner(tally.clone(), &store, quick_options()).spawn();
    let writers = Writers::start(&store, "fo", 3, 4, 45, Duration::from_millis(2));
    writers.wait_succeeded(20).await;
    wait_for_status(&handle, PATIENCE, "the projection to apply", |s| {
        s.applied > 0
    })
    .await;

    let (before, failed) = (writers.succeeded(), writers.failed());
    relay.freeze_current();
    let fault = Instant::now();
    log.say("every open connection silent for good");
    // Every writer's append after the fault needs a connection made after it.
    eventually(RECOVERY_BOUND, "30 appends after the failover", || async {
        (writers.succeeded() >= before + 30).then_some(())
    })
    .await;
    let resumed = fault.elapsed();
    assert!(
        writers.failed() > failed,
        "the fault reached the writers as failed calls"
    );
    log.say(&format!(
        "30 appends again {resumed:?} after the fault; {} calls failed meanwhile",
        writers.failed() - failed
    ));
    let ledger = settle_and_check(&log, &store, writers, handle, &tally).await;
    log.say(&format!(
        "caught up {:?} after the fault; caller errors: {} transient, e.g. {:?}",
        fault.elapsed(),
        ledger.transient_errors.len(),
        ledger.transient_errors.first()
    ));
    drop_schema(&store).await;
    drop(relay);
}

/// The answer timeout of the `LISTEN` scenarios' stores.
const ANSWER: Duration = Duration::from_millis(500);

/// Their runner's poll interval: minutes, so that only a wake-up brings an event in time.
const POLL: Duration = Duration::from_secs(600);

/// A runner on a store reached through a relay, waiting for a wake-up: it applied the one
/// event appended so far (by a wake-up), and its next poll is minutes away.
struct WaitingRunner {
    relay: FreezingRelay,
    /// A store on the same schema, straight to PostgreSQL.
    writer: PgEventStore,
    /// The runner's store, through the relay.
    store: PgEventStore,
    handle: ProjectionHandle,
}

impl WaitingRunner {
    async fn start(first_stream: &str) -> Self {
        let url = database_url();
        let relay = FreezingRelay::start(&upstream_of(&url))
            .await
            .expect("a relay toward PostgreSQL");
        let (writer, store) = stores_beside_a_relay(&url, &relay, ANSWER).await;
        let handle = pg_runner(
            Tally::new("tally"),
            &store,
            quick_options().poll_interval(POLL),
        )
        .spawn();
        append_one(&writer, first_stream).await;
        wait_for_status(
            &handle,
            RECOVERY_BOUND,
            "the first event, by a wake-up",
            |s| s.applied == 1,
        )
        .await;
        Self {
            relay,
            writer,
            store,
            handle,
        }
    }
}

/// Two stores on one fresh schema: one straight to PostgreSQL (the writer: only the runner's
/// side of the network fails), and one through `relay` with `answer` as its answer timeout, on
/// the store's own pool (a connection checked only after it sat idle) waiting at most `answer`
/// for a connection.
async fn stores_beside_a_relay(
    url: &str,
    relay: &FreezingRelay,
    answer: Duration,
) -> (PgEventStore, PgEventStore) {
    let writer = chaos_store(url, 4).await;
    let pool = cqrs_postgres::pool_options()
        .max_connections(4)
        .acquire_timeout(answer)
        .connect(&through_port(url, relay.port()))
        .await
        .expect("a pool through the relay");
    let store = PgEventStore::new(pool)
        .with_schema(writer.schema().clone())
        .with_answer_timeout(answer);
    (writer, store)
}

/// Appends one event to the new stream `stream` (the tally's shape).
async fn append_one(writer: &PgEventStore, stream: &str) {
    let id = cqrs_core::StreamId::new(stream).expect("a stream id");
    let event = cqrs_core::NewEvent::new(
        "Added",
        1,
        serde_json::json!({ "append": stream, "index": 0 }),
    );
    cqrs_core::AppendEvents::append(
        writer,
        &id,
        cqrs_core::ExpectedVersion::NoStream,
        vec![event],
    )
    .await
    .expect("an append straight to PostgreSQL");
}

/// The backends listening on `store`'s channel, seen from `store`'s own pool.
async fn listening_sessions(store: &PgEventStore) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND rtrim(query, ';') = $1",
    )
    .bind(format!("LISTEN \"{}\"", store.channel()))
    .fetch_all(store.pool())
    .await
    .expect("query pg_stat_activity")
}

/// A failover that left the old address dead while a runner waits for a wake-up: the
/// connections made before it hear nothing and are never closed, new ones reach the server.
/// The `LISTEN` connection says nothing, so nothing tells it, and the notifications sent to it
/// are lost. The runner must still be woken by an append within seconds (the store probes a
/// quiet `LISTEN` connection and listens anew on a new one), not at its next poll, minutes
/// away here. Toxiproxy cannot make this fault (see [`FreezingRelay`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_connection_gone_deaf_for_good_wakes_its_runner_again_within_seconds() {
    let log = ScenarioLog::new(
        "deaf",
        "every connection open at the fault silent for good, nothing closed; new ones pass",
    );
    let WaitingRunner {
        relay,
        writer,
        store,
        handle,
    } = WaitingRunner::start("deaf-1").await;

    let deaf = listening_sessions(&writer).await;
    assert_eq!(deaf.len(), 1, "one LISTEN connection: {deaf:?}");

    relay.freeze_current();
    let fault = Instant::now();
    log.say("every open connection silent for good");
    // Its notification is lost with the `LISTEN` connection.
    append_one(&writer, "deaf-2").await;
    // The old session stays (its server hears nothing either); a new one must listen.
    eventually(RECOVERY_BOUND, "a new LISTEN connection", || async {
        let sessions = listening_sessions(&writer).await;
        sessions.iter().any(|pid| !deaf.contains(pid)).then_some(())
    })
    .await;
    let anew = fault.elapsed();
    wait_for_status(
        &handle,
        RECOVERY_BOUND,
        "the event appended in the fault, by the wake-up of listening anew (the next poll is \
         minutes away)",
        |s| s.applied == 2,
    )
    .await;
    let caught_up = fault.elapsed();
    append_one(&writer, "deaf-3").await;
    wait_for_status(
        &handle,
        RECOVERY_BOUND,
        "an event appended after, by its notification",
        |s| s.applied == 3,
    )
    .await;
    log.say(&format!(
        "listening anew {anew:?} after the fault; the event appended in it applied after \
         {caught_up:?}, the next one {:?} after it was appended",
        fault.elapsed() - caught_up
    ));
    handle.shutdown().await;
    drop_schema(&store).await;
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_restart_of_postgres_mid_append_and_mid_projection_recovers_within_the_bound() {
    // Two restarts in CI; restarts one after the other for the soak time when soaking.
    let faults = fault_time(Duration::ZERO);
    let log = ScenarioLog::new(
        "restart",
        &if soaking() {
            format!("fast restarts one after the other for {faults:?}")
        } else {
            "two fast restarts".to_owned()
        },
    );
    let server = PgServer::start(PG_WORKDIR, PG_PORT).await;
    log.say(&format!("own PostgreSQL started on port {PG_PORT}"));
    let store = chaos_store(&server.url(), 8).await;
    // The runner on a pool of its own that waits at most 250 ms for a connection, so a read
    // while the server is away fails (and is retried) rather than waiting it out.
    let runner_store = store_beside(&server.url(), &store, Duration::from_millis(250)).await;
    let tally = Tally::new("tally");
    let handle = pg_runner(tally.clone(), &runner_store, quick_options()).spawn();
    // The writers too wait at most 250 ms for a connection: an append while the server is
    // away fails with a typed error instead of waiting it out in the pool.
    let writer_store = store_beside(&server.url(), &store, Duration::from_millis(250)).await;
    let writers = Writers::start(&writer_store, "rs", 3, 4, 33, Duration::from_millis(2));
    writers.wait_succeeded(20).await;
    wait_for_status(&handle, PATIENCE, "the projection to apply", |s| {
        s.applied > 0
    })
    .await;

    let mut watch = RunnerWatch::default();
    let until = Instant::now() + faults;
    let mut restarts = 0;
    let mut worst = Duration::ZERO;
    loop {
        watch.sample(&handle);
        let failed = writers.failed();
        let (away, back) = server.restart_fast().await;
        restarts += 1;
        log.say(&format!(
            "restart {restarts}: pg_ctl -m fast stop + start took {away:?} (writers had {} \
             failures before it, {} after)",
            failed,
            writers.failed()
        ));
        // Recovered: an append succeeded after the server was back, and the projection's
        // checkpoint passed the head of the feed as it was when the server came back.
        let head = eventually(PATIENCE, "the feed's head after the restart", || async {
            store.head().await.ok()
        })
        .await;
        eventually(PATIENCE, "an append after the restart", || async {
            writers.last_success().filter(|t| *t > back)
        })
        .await;
        let appends_back = back.elapsed();
        let status = wait_for_status(&handle, PATIENCE, "the projection to pass the head", |s| {
            s.position >= head
        })
        .await;
        let recovery = back.elapsed();
        watch.sample(&handle);
        worst = worst.max(recovery);
        log.say(&format!(
            "recovered: appends again {appends_back:?} and the projection past the head {recovery:?} \
             after the server was back ({} state, breaker {:?})",
            status.state, status.breaker
        ));
        assert!(
            recovery <= RECOVERY_BOUND,
            "recovery took {recovery:?}, over the stated bound of {RECOVERY_BOUND:?}"
        );
        if restarts >= 2 && Instant::now() >= until {
            break;
        }
        writers.wait_succeeded(writers.succeeded() + 20).await;
    }
    assert!(
        matches!(
            handle.status().state,
            ProjectionState::Running | ProjectionState::CatchingUp | ProjectionState::Retrying
        ),
        "{:?}",
        handle.status()
    );

    let ledger = settle_and_check(&log, &store, writers, handle, &tally).await;
    log.say(&format!(
        "{restarts} restarts, worst recovery {worst:?} (bound {RECOVERY_BOUND:?}); caller \
         errors: {} transient, e.g. {:?}; the runner reported {} distinct errors, e.g. {:?}",
        ledger.transient_errors.len(),
        ledger.transient_errors.first(),
        watch.retries.len(),
        watch.sample_error
    ));
    assert!(
        !ledger.transient_errors.is_empty(),
        "the restarts reached the callers as typed transient errors"
    );
    assert!(
        !watch.retries.is_empty(),
        "the restarts reached the projection, which retried"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_forwards_refuses_while_disabled_and_is_deleted_with_its_guard() {
    let toxiproxy = Toxiproxy::from_env();
    let url = database_url();
    let name = unique_name("pg-guard");
    let proxy = toxiproxy
        .create_proxy(&name, &upstream_of(&url))
        .expect("create a proxy");
    assert_eq!(proxy.upstream(), upstream_of(&url));
    let through = through_port(&url, proxy.port());
    let one = || async {
        let mut conn = sqlx::postgres::PgConnection::connect(&through).await?;
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut conn)
            .await
    };
    assert_eq!(one().await.expect("a query through the proxy"), 1);
    proxy.disable().unwrap();
    let refused = one().await.expect_err("a disabled proxy refuses");
    eprintln!("[chaos guard] while disabled: {refused}");
    proxy.enable().unwrap();
    assert_eq!(one().await.expect("a query once enabled"), 1);
    let missing = toxiproxy.create_proxy(&name, &upstream_of(&url));
    assert!(
        matches!(missing, Err(ToxiproxyError::Refused { status: 409, .. })),
        "a second proxy of the same name is refused: {missing:?}"
    );
    proxy
        .add(
            "slow",
            Direction::Upstream,
            &Toxic::Latency {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            },
        )
        .unwrap();
    proxy.clear().unwrap();
    let port = proxy.port();
    drop(proxy);
    let again = toxiproxy
        .create_proxy(&name, &upstream_of(&url))
        .expect("the name is free again once the guard dropped");
    assert_ne!(again.port(), 0);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || again.port() == port,
        "the dropped proxy no longer listens"
    );
}
