//! Operations on a running (or stopped) order service, with the service's settings
//! (`DATABASE_URL`, `ELASTICSEARCH_URL`, `SCHEMA`, `INDEX`: see the README):
//!
//! ```text
//! cargo run -p order-service --bin order-service-admin -- status
//! cargo run -p order-service --bin order-service-admin -- dead-letters list
//! cargo run -p order-service --bin order-service-admin -- projections rebuild order-service-orders
//! ```
//!
//! Exit codes: 2 bad input, 3 not found, 4 a server unreachable, 1 anything else.

use std::process::ExitCode;

use clap::Parser;
use cqrs_admin::service::AdminArgs;
use order_service::{admin, Config, StartError};

/// The order service's operations commands.
#[derive(Parser)]
#[command(name = "order-service-admin", version, about)]
struct Cli {
    #[command(flatten)]
    admin: AdminArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("order-service-admin: {error}");
            return ExitCode::from(2);
        }
    };
    match admin(&config).await {
        Ok(admin) => admin.main("order-service-admin", &cli.admin).await,
        Err(error) => {
            let code = match &error {
                StartError::Database(_) => 4,
                _ => 2,
            };
            eprintln!("order-service-admin: {}", chain(&error));
            ExitCode::from(code)
        }
    }
}

/// An error and its causes, joined by ": " (none of the service's errors shows a password).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text.replace('\n', " ")
}
