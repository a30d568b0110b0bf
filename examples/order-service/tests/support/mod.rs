//! What the service tests share: the servers from the environment, a [`TestService`] on a free
//! port with its own schema and read model, a [`Relay`] to cut a server off, polling with a
//! deadline, and a Prometheus text parser.

#![allow(dead_code)] // each test file uses its own part

pub(crate) mod binary;
pub(crate) mod prometheus;
pub(crate) mod relay;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use cqrs_elastic::testing::TestNode;
use order_service::{Config, Service};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub(crate) use binary::Binary;
#[allow(unused_imports)]
pub(crate) use relay::Relay;

/// How long a test waits for anything.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// The variable `name`; the test fails, naming it, when it is unset.
pub(crate) fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("these tests need {name}: run scripts/test.sh, or set DATABASE_URL and ELASTICSEARCH_URL"),
    }
}

/// `url` with its host and port replaced by `address`.
pub(crate) fn via(url: &str, address: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("a URL");
    url.set_ip_host(address.ip()).expect("an IP host");
    url.set_port(Some(address.port())).expect("a port");
    url.to_string()
}

/// The host and port `url` points at.
pub(crate) fn address_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).expect("a URL");
    let host = url.host_str().expect("a host").to_owned();
    let port = url.port_or_known_default().expect("a port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("a resolvable host")
        .find(SocketAddr::is_ipv4)
        .expect("an IPv4 address")
}

/// A config on the servers of the environment, in a fresh schema and read model name.
pub(crate) fn config() -> (Config, Names) {
    let names = Names::new();
    let config = Config::new(
        required_env("DATABASE_URL"),
        required_env("ELASTICSEARCH_URL"),
    )
    .with_schema(names.schema.clone())
    .with_index(names.index.clone())
    .with_dependency_timeout(Duration::from_secs(2));
    (config, names)
}

/// A test's schema and read model, dropped by [`Names::clean_up`].
pub(crate) struct Names {
    /// The PostgreSQL schema.
    pub(crate) schema: String,
    /// The read model's name.
    pub(crate) index: String,
    node: TestNode,
}

impl Names {
    fn new() -> Self {
        let node = TestNode::from_env().expect("ELASTICSEARCH_URL");
        let index = node.unique_name("order-service");
        Self {
            schema: cqrs_postgres::testing::unique_schema().as_str().to_owned(),
            index,
            node,
        }
    }

    /// Drops the schema and deletes the read model's indices.
    pub(crate) async fn clean_up(self) {
        let pool = sqlx::PgPool::connect(&required_env("DATABASE_URL"))
            .await
            .expect("connect");
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ))
        .execute(&pool)
        .await
        .expect("drop the schema");
        self.node.clean_up().await.expect("delete the indices");
    }
}

/// A [`Service`] serving on a free port of 127.0.0.1, in this process.
pub(crate) struct TestService {
    /// `http://127.0.0.1:port`.
    pub(crate) base: String,
    /// A store on the service's schema (through no relay).
    pub(crate) store: cqrs_postgres::PgEventStore,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestService {
    /// Starts `config`'s service and serves it.
    pub(crate) async fn start(config: Config) -> Self {
        let service = Service::start(config).await.expect("the service starts");
        let store = service.store().clone();
        Self::serve(service, store).await
    }

    /// Serves `service`.
    pub(crate) async fn serve(service: Service, store: cqrs_postgres::PgEventStore) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(service.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            store,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Tells the service to shut down (as a SIGTERM would), without waiting for it.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts the service down gracefully and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let ended = tokio::time::timeout(PATIENCE, served).await;
            ended
                .expect("the service stops in time")
                .expect("no panic")
                .expect("served");
        }
    }
}

/// A client that never waits long.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("a client")
}

/// Sends `request`; its status and JSON body (`Null` when there is none).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, body)
}

/// Calls `check` until it returns `Some`, at most [`PATIENCE`]; panics with `what` after.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the service answers readiness 200.
pub(crate) async fn ready(client: &reqwest::Client, service: &TestService) {
    let url = service.url("/health/readiness");
    eventually("readiness 200", || async {
        let (status, _, _) = send(client.get(&url)).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
}
