//! `service-bench`: the order service's HTTP path against the same commands sent through its
//! `Repository` directly, and the cost of tracing (every span sampled and exported over OTLP)
//! against none, in the same run.
//!
//! ```text
//! eval "export $(scripts/postgres.sh start | tail -n1)"          # or any DATABASE_URL
//! eval "export $(scripts/opensearch.sh start 9200 | tail -n1)"   # or any ELASTICSEARCH_URL
//! scripts/jaeger.sh start                                        # optional: a real OTLP receiver
//! export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318       # optional
//! cargo run --release -p cqrs-benchmarks --bin service-bench -- --quick
//! ```
//!
//! One [`Service`] runs in this process on a free port, with its own schema and read model
//! (dropped afterwards), its workers running as in production. Each run sends `commands`
//! restocks (each to a stream of its own, so no run meets another's conflicts or warm cache)
//! from `clients` concurrent clients, through one of three systems:
//!
//! - `repository (direct)`: `service.shop().stock.execute_with(..)` with a correlation id, as
//!   the HTTP handler calls it;
//! - `http`: `POST /stock/{sku}/restock` with a JSON body, each client on its own kept-alive
//!   HTTP/1.1 connection (a minimal client: one write per request, the answer read up to its
//!   `Content-Length`, so that the figures show the service's cost more than a client's), tracing
//!   off (the OpenTelemetry layer installed but disabled);
//! - `http + tracing`: the same with the OpenTelemetry layer on, every span sampled: the
//!   service's at info and the framework's at debug (what the binary exports), batched to
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` over OTLP http/protobuf, or to an exporter that drops them
//!   when that is unset (the cost of building and batching spans without the network).
//!
//! The rounds rotate the order of the systems. Every command must succeed, and the events
//! written are counted at the end against the commands sent. Figures and ratios are printed;
//! nothing is asserted about timings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use cqrs_benchmarks::machine::Machine;
use cqrs_benchmarks::secret::SecretUrl;
use cqrs_benchmarks::table::{rotation, Row, Table};
use cqrs_core::CommandContext;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use order_service::{Config, Service};
use quickstart::inventory::InventoryCommand;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;
use uuid::Uuid;

/// The order service's HTTP path against direct `Repository` calls, and tracing on against off.
#[derive(Debug, Parser)]
#[command(name = "service-bench")]
struct Args {
    /// The PostgreSQL server (or `$DATABASE_URL`, whose value `--help` does not show).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: SecretUrl,

    /// The search node for the service's read model (or `$ELASTICSEARCH_URL`).
    #[arg(long, env = "ELASTICSEARCH_URL", hide_env_values = true)]
    elasticsearch_url: SecretUrl,

    /// Concurrent clients (default 64: with 16 the direct path is bound by each command's
    /// latency, not the machine, and any added latency shows as lost throughput).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=200))]
    clients: u32,

    /// Smaller sizes, for a smoke run.
    #[arg(long)]
    quick: bool,
}

/// The systems compared, in their table order.
const SYSTEMS: [&str; 3] = ["repository (direct)", "http", "http + tracing"];

/// Whether the OpenTelemetry layer records spans.
static TRACING: AtomicBool = AtomicBool::new(false);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (commands, rounds) = if args.quick { (600, 3) } else { (12_000, 5) };
    let machine = Machine::detect();
    let exporting = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let provider = tracer_provider(exporting)?;
    install_subscriber(&provider)?;

    let run = std::process::id();
    let schema = format!("service_bench_{run}");
    let index = format!("service-bench-{run}");
    let config = Config::new(&*args.database_url, &*args.elasticsearch_url)
        .with_schema(&schema)
        .with_index(&index);
    let service = Arc::new(
        Service::start(config)
            .await
            .context("starting the service")?,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = service.store().clone();
    let serving = Arc::clone(&service);
    let served = tokio::spawn(async move {
        serving
            .serve_http(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    let address = base
        .strip_prefix("http://")
        .context("an http address")?
        .to_owned();

    println!(
        "service-bench: {} cores ({}), {commands} restocks per run from {} clients, {rounds} rounds; spans {}",
        machine.cpus,
        machine.model,
        args.clients,
        if exporting {
            "exported over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT"
        } else {
            "batched to an exporter that drops them (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
        }
    );
    // Warm up: connections, caches of the HTTP stack, the first plans.
    send_all(&address, &service, 1, "warm", 200, args.clients).await?;

    let mut runs: Vec<Vec<Row>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for system in rotation(round, SYSTEMS.len()) {
            TRACING.store(system == 2, Ordering::SeqCst);
            let label = format!("r{round}s{system}");
            let took = send_all(&address, &service, system, &label, commands, args.clients).await?;
            TRACING.store(false, Ordering::SeqCst);
            // Let the batch exporter drain before the next run, so no run pays for another's
            // spans.
            let _ = provider.force_flush();
            runs[system].push(Row::new(
                SYSTEMS[system],
                commands,
                took,
                "every command 200 / Ok".into(),
            ));
        }
    }

    let mut table = Table::new(
        "order service: restocks through HTTP against the repository, tracing on against off",
        "commands/s",
    )
    .versus("vs direct", SYSTEMS[0])
    .versus("vs http", SYSTEMS[1]);
    for rows in runs {
        if let Some(row) = Row::median(rows) {
            table.push(row);
        }
    }
    table.footnote("targets: http >= 0.85x direct; http + tracing >= 0.9x http".into());
    table.print();

    let written = count_events(&store, &schema).await?;
    let sent = 200 + commands * rounds as u64 * SYSTEMS.len() as u64;
    let _ = stop.send(());
    served.await??;
    if let Ok(service) = Arc::try_unwrap(service) {
        service.shutdown().await;
    }
    let _ = provider.shutdown();
    drop_schema(&store, &schema).await?;
    delete_indices(&args.elasticsearch_url, &index).await?;
    if written != sent {
        bail!("{sent} commands were sent, but {written} events were written");
    }
    println!("  checked: {written} events written for {sent} commands sent");
    Ok(())
}

/// Sends `commands` restocks through `system` from `clients` concurrent clients; the time
/// they all took.
async fn send_all(
    address: &str,
    service: &Arc<Service>,
    system: usize,
    label: &str,
    commands: u64,
    clients: u32,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..u64::from(clients) {
        let (address, service) = (address.to_owned(), Arc::clone(service));
        let label = label.to_owned();
        tasks.spawn(async move {
            let mut http = if system == 0 {
                None
            } else {
                Some(Connection::open(&address).await?)
            };
            let mut n = client;
            while n < commands {
                let sku = format!("bench-{label}-{n}");
                if let Some(http) = http.as_mut() {
                    let status = http
                        .post(&format!("/stock/{sku}/restock"), r#"{"quantity":5}"#)
                        .await?;
                    if !(200..300).contains(&status) {
                        bail!("POST restock {sku} answered {status}");
                    }
                } else {
                    let command = InventoryCommand::Restock { quantity: 5 };
                    let context = CommandContext::new().correlation_id(Uuid::now_v7());
                    (service.shop().stock)
                        .execute_with(&sku, &command, context)
                        .await
                        .with_context(|| format!("restock {sku}"))?;
                }
                n += u64::from(clients);
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

/// One client's HTTP/1.1 connection to the service (kept alive, `TCP_NODELAY`): the request
/// written in one `write`, the answer read up to its `Content-Length`. The load generator
/// shares the machine's cores with the service, so it is kept as thin as an HTTP client can be.
struct Connection {
    host: String,
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(address: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            host: address.to_owned(),
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// POSTs `body` (JSON) to `path`; the answer's status, its body read to the end.
    async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<u16> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.buffer.clear();
        loop {
            if let Some(status) = complete_response(&self.buffer)? {
                return Ok(status);
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                bail!("the service closed the connection");
            }
        }
    }
}

/// The status of the HTTP/1.1 response in `buffer` once it is whole (headers and a
/// `Content-Length` body); `None` while more is needed.
fn complete_response(buffer: &[u8]) -> anyhow::Result<Option<u16>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end]).context("response headers")?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse::<u16>().ok())
        .context("a status line")?;
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .context("a content-length")?;
    Ok((buffer.len() >= end + 4 + length).then_some(status))
}

/// The tracer provider: OTLP over http/protobuf when an endpoint is set, else an exporter that
/// drops the spans; batched either way, every span sampled.
fn tracer_provider(exporting: bool) -> anyhow::Result<SdkTracerProvider> {
    let builder = SdkTracerProvider::builder();
    let builder = if exporting {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("building the OTLP exporter")?;
        builder.with_batch_exporter(exporter)
    } else {
        builder.with_batch_exporter(Discard)
    };
    Ok(builder.build())
}

/// The process's subscriber: the OpenTelemetry layer with the binary's export filter (the
/// service at info, the framework at debug), recording only while [`TRACING`] is on.
fn install_subscriber(provider: &SdkTracerProvider) -> anyhow::Result<()> {
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("service-bench"))
        .with_filter(filter_fn(|meta| {
            TRACING.load(Ordering::Relaxed)
                && (*meta.level() <= tracing::Level::INFO || meta.target().starts_with("cqrs_"))
        }));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .context("installing the subscriber")
}

/// Drops every span (for runs without an OTLP endpoint).
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

async fn count_events(store: &cqrs_postgres::PgEventStore, schema: &str) -> anyhow::Result<u64> {
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{schema}\".events WHERE stream_id LIKE 'inventory-bench-%'"
    ))
    .fetch_one(store.pool())
    .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

async fn drop_schema(store: &cqrs_postgres::PgEventStore, schema: &str) -> anyhow::Result<()> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await?;
    Ok(())
}

async fn delete_indices(url: &str, index: &str) -> anyhow::Result<()> {
    let client = cqrs_elastic::connect(url)?;
    client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &format!("{index}*"),
        ]))
        .send()
        .await?;
    Ok(())
}
