//! A shutdown waits for the requests in flight for the configured grace, no longer: a client
//! that trickles a body cannot hold up the workers' shutdown (their checkpoints, their leases)
//! until an orchestrator's kill.

mod support;

use std::time::Duration;

use support::{client, config, ready, TestService};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_sending_its_body_is_cut_off_after_the_grace() {
    let (config, names) = config();
    let config = config.with_shutdown_grace(Duration::from_millis(500));
    let service = TestService::start(config).await;
    ready(&client(), &service).await;

    // A request that announces a body it never finishes sending.
    let address = service.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /orders/slow HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: 1000\r\n\r\n{{\"customer\":"
    );
    slow.write_all(head.as_bytes())
        .await
        .expect("send the head");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopped = tokio::time::timeout(Duration::from_secs(10), service.stop()).await;
    assert!(
        stopped.is_ok(),
        "the service still waits for the slow request"
    );
    drop(slow);
    names.clean_up().await;
}
