//! Operations on a running (or stopped) order service, with the service's settings
//! (`DATABASE_URL`, `ELASTICSEARCH_URL`, `ORDER_SERVICE_SCHEMA`, `ORDER_SERVICE_INDEX`: see the
//! README):
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
use cqrs_admin::cli;
use cqrs_admin::service::AdminArgs;
use cqrs_core::error_chain;
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
    let cli: Cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
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
            // None of the service's errors shows a password.
            eprintln!(
                "order-service-admin: {}",
                error_chain(&error).replace('\n', " ")
            );
            ExitCode::from(code)
        }
    }
}
