//! Run it: with a PostgreSQL and a search node (`scripts/postgres.sh start` and
//! `scripts/opensearch.sh start 9200` print the variables to export),
//!
//! ```text
//! DATABASE_URL=postgres://... ELASTICSEARCH_URL=http://127.0.0.1:9200 cargo run -p order-service
//! ```
//!
//! It listens on `BIND` (default `127.0.0.1:8080`); see `examples/order-service/README.md` for
//! every setting and route. SIGTERM or Ctrl-C stops it gracefully: no new connections, the
//! requests in flight finish within `ORDER_SERVICE_SHUTDOWN_GRACE_MS` (one still running then
//! is cut, its client told nothing: it retries with its `X-Command-Id`), the workers save their
//! checkpoints and release their leases, then it exits 0.

use std::process::ExitCode;

use cqrs_core::error_chain;
use order_service::{Config, Service};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("order-service: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match order_service::telemetry::init(&config) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("order-service: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "order service failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    tracing::info!(config = ?config, "starting");
    let bind = config.bind;
    let service = Service::start(config).await.map_err(|e| error_chain(&e))?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("could not listen on {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Tests read this line to find the port when BIND asks for port 0.
    tracing::info!(address = %local, "listening");
    println!("listening on {local}");
    service
        .serve(listener, terminated())
        .await
        .map_err(|e| format!("serving failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn terminated() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
