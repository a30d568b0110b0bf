//! Running one command: connect, ask the [`Inspector`], print.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use cqrs_core::bus::{BusLetterTarget, ParkedKey};
use cqrs_core::projection::LetterTarget;
use cqrs_core::Position;
use serde::Serialize;

use super::render;
use super::{
    BusLetterArgs, BusLetterCommand, Cli, Command, DeadLetterCommand, EventCommand, FeedCommand,
    LetterArgs, Options, ProcessCommand, StreamCommand,
};
use crate::inspect::{EventView, InstanceFilterView, LetterFilter, TailQuery};
use crate::{AdminError, Inspector, Result};

/// How often `events tail --follow` looks for new events when the last read found none.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Connects as `options` say (`--database-url` or `DATABASE_URL`, `--schema`).
pub async fn connect(options: &Options) -> Result<Inspector> {
    let url = options.database_url.as_deref().ok_or_else(|| {
        AdminError::invalid("no database URL: pass --database-url or set DATABASE_URL")
    })?;
    Inspector::connect(url, &options.schema).await
}

/// Parses nothing: connects as `cli.options` say and runs `cli.command`, printing to stdout.
pub async fn execute(cli: &Cli) -> Result<()> {
    let inspector = connect(&cli.options).await?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(&inspector, &cli.command, cli.options.json, &mut out).await {
        // A reader that went away (`cqrs events tail | head`) is not a failure.
        Err(AdminError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs `command` over `inspector`, writing a table (or, with `json`, one JSON document) to
/// `out`.
pub async fn run(
    inspector: &Inspector,
    command: &Command,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        Command::Migrate => {
            let applied = inspector.migrate().await?;
            if json {
                print_json(out, &serde_json::json!({ "applied": applied }))?;
            } else if applied.is_empty() {
                writeln!(out, "schema is up to date")?;
            } else {
                let list: Vec<String> = applied.iter().map(i32::to_string).collect();
                writeln!(out, "applied migrations {}", list.join(", "))?;
            }
        }
        Command::Status => {
            let overview = inspector.overview().await?;
            if json {
                print_json(out, &overview)?;
            } else {
                render::overview(out, &overview)?;
            }
        }
        Command::DeadLetters(command) => dead_letters(inspector, command, json, out).await?,
        Command::BusLetters(command) => bus_letters(inspector, command, json, out).await?,
        Command::Streams(StreamCommand::Show { id, from, limit }) => {
            let stream = inspector.stream(id, *from, *limit).await?;
            if json {
                print_json(out, &stream)?;
            } else {
                render::stream(out, &stream)?;
            }
        }
        Command::Events(EventCommand::Tail {
            follow,
            category,
            event_type,
            from,
            limit,
        }) => {
            let mut query = TailQuery::new();
            query.categories.clone_from(category);
            query.event_types.clone_from(event_type);
            query.after = match from.as_deref() {
                None => Position::START,
                Some("head") => inspector.head().await?,
                Some(text) => crate::inspect::before(
                    super::args::parse_position(text).map_err(AdminError::invalid)?,
                ),
            };
            if *follow {
                follow_feed(inspector, query, *limit, json, out).await?;
            } else {
                let page = inspector.tail(&query.limit(limit.unwrap_or(100))).await?;
                if json {
                    print_json(out, &page)?;
                } else {
                    render::tail(out, &page)?;
                }
            }
        }
        Command::Feed(FeedCommand::Horizon) => {
            let horizon = inspector.horizon().await?;
            if json {
                print_json(out, &horizon)?;
            } else {
                render::horizon(out, &horizon)?;
            }
        }
        Command::Processes(command) => processes(inspector, command, json, out).await?,
        Command::Correlation { id, limit } => {
            let correlation = inspector.correlation(*id, *limit).await?;
            if json {
                print_json(out, &correlation)?;
            } else {
                render::correlation(out, &correlation)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

async fn dead_letters(
    inspector: &Inspector,
    command: &DeadLetterCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        DeadLetterCommand::List {
            projection,
            key,
            stream,
            event_type,
            limit,
        } => {
            let filter = LetterFilter {
                projection: projection.clone(),
                key: key.clone(),
                stream_id: stream.clone(),
                event_type: event_type.clone(),
                limit: *limit,
            };
            if let Some(name) = projection {
                // An unknown projection is a mistake, not an empty list.
                inspector.subscriber(name).await?;
            }
            let letters = inspector.dead_letters(&filter).await?;
            if json {
                print_json(out, &letters)
            } else {
                Ok(render::letters(out, &letters)?)
            }
        }
        DeadLetterCommand::Show {
            projection,
            position,
        } => {
            let detail = inspector.dead_letter(projection, *position).await?;
            if json {
                print_json(out, &detail)
            } else {
                Ok(render::letter(out, &detail)?)
            }
        }
        DeadLetterCommand::Retry(args) => {
            let marked = inspector.retry(&args.projection, &target(args)?).await?;
            requested(out, json, "retry", &args.projection, marked)
        }
        DeadLetterCommand::Skip(args) => {
            let marked = inspector.skip(&args.projection, &target(args)?).await?;
            requested(out, json, "skip", &args.projection, marked)
        }
    }
}

async fn bus_letters(
    inspector: &Inspector,
    command: &BusLetterCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        BusLetterCommand::List { consumer, limit } => {
            let letters = inspector.bus_letters(consumer.as_deref(), *limit).await?;
            if json {
                print_json(out, &letters)
            } else {
                Ok(render::bus_letters(out, &letters)?)
            }
        }
        BusLetterCommand::Retry(args) => {
            let marked = inspector
                .retry_message(&args.consumer, &bus_target(args)?)
                .await?;
            requested(out, json, "retry", &args.consumer, marked)
        }
        BusLetterCommand::Skip(args) => {
            let marked = inspector
                .skip_message(&args.consumer, &bus_target(args)?)
                .await?;
            requested(out, json, "skip", &args.consumer, marked)
        }
    }
}

fn bus_target(args: &BusLetterArgs) -> Result<BusLetterTarget> {
    match (&args.message, &args.key, &args.topic) {
        (Some(text), None, _) => crate::inspect::parse_message(text)
            .map(BusLetterTarget::Message)
            .ok_or_else(|| {
                AdminError::invalid(format!(
                    "{text:?} is not a message: write it topic/partition/offset, as listed"
                ))
            }),
        (None, Some(key), Some(topic)) => Ok(BusLetterTarget::Key(ParkedKey::new(
            topic.clone(),
            key.as_bytes().to_vec(),
        ))),
        _ => Err(AdminError::invalid(
            "give either a message or --key with --topic",
        )),
    }
}

fn target(args: &LetterArgs) -> Result<LetterTarget> {
    match (&args.position, &args.key) {
        (Some(position), None) => Ok(LetterTarget::Position(*position)),
        (None, Some(key)) => Ok(LetterTarget::Key(key.clone())),
        _ => Err(AdminError::invalid("give either a position or --key")),
    }
}

fn requested(
    out: &mut dyn Write,
    json: bool,
    request: &str,
    projection: &str,
    marked: u64,
) -> Result<()> {
    if json {
        print_json(
            out,
            &serde_json::json!({ "projection": projection, "request": request, "marked": marked }),
        )
    } else {
        writeln!(
            out,
            "{request} requested for {marked} letter(s) of {projection}; its leading worker acts on it"
        )?;
        Ok(())
    }
}

async fn processes(
    inspector: &Inspector,
    command: &ProcessCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        ProcessCommand::List {
            process,
            stuck,
            stuck_after,
            limit,
        } => {
            let known = inspector.processes().await?;
            let names = match process {
                Some(name) => {
                    let name = name.strip_prefix("process:").unwrap_or(name).to_owned();
                    if !known.contains(&name) {
                        return Err(AdminError::not_found(format!(
                            "no process manager named {name:?} (known: {})",
                            known.join(", ")
                        )));
                    }
                    vec![name]
                }
                None => known,
            };
            let filter = if *stuck {
                InstanceFilterView::Stuck
            } else {
                InstanceFilterView::All
            };
            let mut rows = Vec::new();
            for name in &names {
                rows.extend(
                    inspector
                        .instances(
                            name,
                            filter,
                            Duration::from_secs(*stuck_after),
                            None,
                            *limit,
                        )
                        .await?,
                );
            }
            if json {
                print_json(out, &rows)
            } else {
                Ok(render::instances(out, &rows)?)
            }
        }
        ProcessCommand::Show { process, instance } => {
            let detail = inspector.instance(process, instance).await?;
            if json {
                print_json(out, &detail)
            } else {
                Ok(render::instance(out, &detail)?)
            }
        }
    }
}

/// Prints the feed as it grows until `limit` events were printed (or forever), polling.
async fn follow_feed(
    inspector: &Inspector,
    mut query: TailQuery,
    limit: Option<usize>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut printed = 0usize;
    loop {
        let page = inspector.tail(&query.clone().limit(500)).await?;
        query.after = page.next;
        for event in &page.events {
            if limit.is_some_and(|l| printed >= l) {
                return Ok(());
            }
            print_follow(out, event, json)?;
            printed += 1;
        }
        out.flush()?;
        if limit.is_some_and(|l| printed >= l) {
            return Ok(());
        }
        if !page.more {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

fn print_follow(out: &mut dyn Write, event: &EventView, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, event).map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        render::event_line(out, event)?;
    }
    Ok(())
}

fn print_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

/// Parses this process's command line into `C`: `Err` is the exit code once clap has printed
/// what it had to say (`--help` or `--version`: 0; a usage error: 2, with the usage on
/// stderr). For a `main` of the `cqrs` binary's kind, a service's own admin binary included.
pub fn parse<C: clap::Parser>() -> std::result::Result<C, ExitCode> {
    C::try_parse().map_err(|error| {
        let _ = error.print();
        if error.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The exit code for the outcome of a command: 0, or the error's class's (2 bad input,
/// 3 not found, 4 server unreachable, 1 anything else).
pub fn exit_code(result: &Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(error.class().exit_code()),
    }
}

/// Prints `error` as one line on stderr, prefixed with `program`, with the password of `url`
/// (if any) masked wherever it appears.
pub fn report(program: &str, error: &AdminError, url: Option<&str>) {
    let mut message = error.to_string();
    if let Some(password) = url.and_then(password) {
        message = message.replace(&password, "****");
    }
    let message: String = message
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    eprintln!("{program}: {message}");
}

/// The password in a URL's user information, as written.
fn password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (user_info, _) = authority.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}
