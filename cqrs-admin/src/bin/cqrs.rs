//! `cqrs`: the operations command line for a store on PostgreSQL.
//!
//! ```text
//! export DATABASE_URL=postgres://app:secret@127.0.0.1:5432/app
//! cqrs status                      # every projection: checkpoint, lag, lease, dead letters
//! cqrs dead-letters list --projection orders
//! cqrs dead-letters retry orders 812/3
//! cqrs events tail --follow --category order
//! ```
//!
//! Errors are one line on stderr; exit codes: 2 bad input, 3 not found, 4 server unreachable,
//! 130 interrupted (Ctrl-C), 1 anything else.

use std::process::ExitCode;

use cqrs_admin::cli::{self, Cli};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        eprintln!("cqrs: internal error: {}", message.replace('\n', " "));
    }));
    let cli: Cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cqrs: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let execute = cli::execute(&cli);
        tokio::pin!(execute);
        tokio::select! {
            result = &mut execute => Some(result),
            signal = tokio::signal::ctrl_c() => match signal {
                Ok(()) => None,
                // No Ctrl-C to listen for: the command runs to its end.
                Err(_) => Some(execute.await),
            },
        }
    });
    let Some(result) = result else {
        eprintln!("cqrs: interrupted");
        return ExitCode::from(INTERRUPTED);
    };
    if let Err(error) = &result {
        cli::report("cqrs", error, cli.options.database_url.as_deref());
    }
    cli::exit_code(&result)
}

/// The exit code of a command stopped by Ctrl-C, as shells report a process SIGINT ended.
const INTERRUPTED: u8 = 130;
