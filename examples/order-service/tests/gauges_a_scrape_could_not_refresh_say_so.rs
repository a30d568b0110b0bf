//! A scrape that cannot refresh the gauges it reads from PostgreSQL (the feed horizon, the
//! saga's instance counts) still answers, and says so: `cqrs_gauges_refreshed` is 0 for each
//! such source, since its gauges still show the values of the last refresh that worked and
//! an alert on them could not fire; it is 1 again once PostgreSQL is back (scrapes within a
//! second of a refresh share it, so each state shows at a later scrape). The service
//! reaches the shared server through a [`Relay`] the test cuts and restores. (Its own binary:
//! the recorder is process-wide, and another test's scrape would set the same gauge.)

mod support;

use cqrs_core::telemetry::metrics;
use order_service::metrics::{FEED_HORIZON_SOURCE, PROCESS_INSTANCES_SOURCE};
use reqwest::StatusCode;
use support::prometheus::{parse, Sample};
use support::{address_of, client, config, required_env, via, Relay, TestService};

/// Whether the scrape says `source` was refreshed: `None` when it says nothing of it.
fn refreshed(samples: &[Sample], source: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == metrics::GAUGES_REFRESHED
                && s.labels.get("source").map(String::as_str) == Some(source)
        })
        .map(|s| s.value)
}

async fn scrape(http: &reqwest::Client, service: &TestService) -> Vec<Sample> {
    let response = http
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    parse(&response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_a_scrape_could_not_refresh_are_marked_stale_until_it_can_again() {
    let database = required_env("DATABASE_URL");
    let relay = Relay::start(address_of(&database)).await;
    let (mut config, names) = config();
    config.database_url = via(&database, relay.address());
    let service = TestService::start(config).await;
    let http = client();
    let sources = [FEED_HORIZON_SOURCE, PROCESS_INSTANCES_SOURCE];

    let samples = scrape(&http, &service).await;
    for source in sources {
        assert_eq!(refreshed(&samples, source), Some(1.0), "{source}");
    }

    // Scrapes within a second of a refresh share it: the first refresh tried with the
    // database cut off says so.
    relay.cut();
    support::eventually("the gauges marked not refreshed", || async {
        let samples = scrape(&http, &service).await;
        sources
            .iter()
            .all(|source| refreshed(&samples, source) == Some(0.0))
            .then_some(())
    })
    .await;

    relay.restore();
    let samples = support::eventually("the gauges refreshed again", || async {
        let samples = scrape(&http, &service).await;
        sources
            .iter()
            .all(|source| refreshed(&samples, source) == Some(1.0))
            .then_some(samples)
    })
    .await;
    assert!(!samples.is_empty());
    service.stop().await;
    names.clean_up().await;
}
