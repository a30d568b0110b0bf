//! [`Admin`]: the commands a service embeds, with its registered projections.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{AdminProjection, Progress};
use crate::cli::{self, Command, Table};
use crate::{AdminError, Inspector, Result};

/// The `admin` arguments a service adds to its own command line (`my-service admin status`).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct AdminArgs {
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Everything `cqrs` does, plus the projections' commands.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminCommand {
    /// The service's projections: list, rebuild, reset.
    #[command(subcommand)]
    Projections(ProjectionCommand),
    /// The store's commands, as `cqrs` has them.
    #[command(flatten)]
    Store(Command),
}

/// `projections ...`
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectionCommand {
    /// The projections this service registered, with their progress.
    List,
    /// Build a projection again from the start of the feed, with a progress line.
    Rebuild {
        /// The projection's name.
        name: String,
    },
    /// Forget a projection's checkpoint: its runner replays the feed from the start.
    Reset {
        /// The projection's name.
        name: String,
    },
}

/// The admin commands over a service's store and projections.
#[derive(Clone)]
pub struct Admin {
    inspector: Inspector,
    projections: Vec<Arc<dyn AdminProjection>>,
}

impl Admin {
    /// Over `inspector`'s store, with no projections registered yet.
    pub fn new(inspector: Inspector) -> Self {
        Self {
            inspector,
            projections: Vec::new(),
        }
    }

    /// Registers a projection for `projections rebuild` and `reset`.
    #[must_use]
    pub fn projection(mut self, projection: impl AdminProjection + 'static) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// The registered projection `name`; [`AdminError::NotFound`] naming the known ones.
    fn find(&self, name: &str) -> Result<&Arc<dyn AdminProjection>> {
        self.projections
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
                AdminError::not_found(format!(
                    "no projection named {name:?} is registered (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// Runs `args`, printing to `out` (progress lines go to stderr).
    pub async fn run(&self, args: &AdminArgs, out: &mut dyn Write) -> Result<()> {
        match &args.command {
            AdminCommand::Store(command) => {
                cli::run(&self.inspector, command, args.json, out).await
            }
            AdminCommand::Projections(command) => self.projections(command, args.json, out).await,
        }
    }

    /// Runs `args` on stdout and reports an error as `program: message` on stderr; the exit
    /// code to return from `main` (see [`ErrorClass::exit_code`](crate::ErrorClass::exit_code)).
    pub async fn main(&self, program: &str, args: &AdminArgs) -> ExitCode {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let result = match self.run(args, &mut out).await {
            Err(AdminError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        };
        if let Err(error) = &result {
            cli::report(program, error, None);
        }
        cli::exit_code(&result)
    }

    async fn projections(
        &self,
        command: &ProjectionCommand,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<()> {
        match command {
            ProjectionCommand::List => {
                let overview = self.inspector.overview().await?;
                let rows: Vec<_> = self
                    .projections
                    .iter()
                    .map(|p| (p.name().to_owned(), overview.subscriber(p.name()).cloned()))
                    .collect();
                if json {
                    let value: Vec<_> = rows
                        .iter()
                        .map(|(name, s)| serde_json::json!({ "name": name, "status": s }))
                        .collect();
                    serde_json::to_writer_pretty(&mut *out, &value).map_err(io::Error::other)?;
                    writeln!(out)?;
                } else {
                    let mut table = Table::new(["NAME", "CHECKPOINT", "LAG", "DEAD LETTERS"]);
                    for (name, s) in &rows {
                        table.row([
                            name.clone(),
                            s.as_ref()
                                .and_then(|s| s.checkpoint)
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "-".to_owned()),
                            s.as_ref()
                                .map(|s| s.lag_label())
                                .unwrap_or_else(|| "-".to_owned()),
                            s.as_ref()
                                .map(|s| s.dead_letters.to_string())
                                .unwrap_or_else(|| "0".to_owned()),
                        ]);
                    }
                    table.write(out)?;
                }
            }
            ProjectionCommand::Rebuild { name } => {
                let projection = self.find(name)?;
                let progress = Progress::new(
                    self.inspector.clone(),
                    projection.progress(),
                    format!("rebuilding {name}"),
                );
                let outcome = progress
                    .run(projection.rebuild())
                    .await
                    .map_err(|e| failed(name, &*e))?;
                if json {
                    serde_json::to_writer_pretty(&mut *out, &outcome).map_err(io::Error::other)?;
                    writeln!(out)?;
                } else {
                    let events = outcome
                        .events
                        .map(|n| format!(", {n} events"))
                        .unwrap_or_default();
                    let detail = if outcome.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", outcome.detail)
                    };
                    writeln!(
                        out,
                        "rebuilt {name} up to {}{events}{detail}",
                        outcome.position
                    )?;
                }
            }
            ProjectionCommand::Reset { name } => {
                let projection = self.find(name)?;
                projection.reset().await.map_err(|e| failed(name, &*e))?;
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "name": name, "reset": true })
                    )?;
                } else {
                    writeln!(
                        out,
                        "reset {name}: its runner replays the feed from the start"
                    )?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// A projection's failure, with its causes' text.
fn failed(name: &str, error: &(dyn std::error::Error + 'static)) -> AdminError {
    AdminError::Projection {
        name: name.to_owned(),
        reason: cqrs_core::error_chain(error),
    }
}
