//! Process-manager instances: counts and a page of instances per process (all, or the stuck
//! ones), and one instance with its timeline. Built on cqrs-core's
//! [`Processes`](cqrs_core::process::Processes), so a parked instance reads as failed here as
//! everywhere.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use cqrs_core::process::{InstanceQuery, InstanceRow, Processes, TimelineKind};
use maud::html;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::Signed;
use crate::pages::{pretty, query_value};
use crate::store::ConsoleStore;
use crate::web::{when, Console};

/// Instances listed per process.
const PAGE: usize = 100;

/// `?stuck=1`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    stuck: Option<String>,
}

/// `GET {base}/processes[?stuck=1]`.
pub(crate) async fn list<S: ConsoleStore + Clone>(
    State(console): State<Arc<Console<S>>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    let stuck_only = query.stuck.is_some_and(|s| s == "1" || s == "true");
    let processes = Processes::new(console.store.clone());
    let now = OffsetDateTime::now_utc();
    let stuck_after = console.config.stuck_after;
    let mut sections = Vec::new();
    for process in &console.config.processes {
        let counts = match processes.counts(process, now, stuck_after).await {
            Ok(counts) => counts,
            Err(error) => return console.store_failure(&signed, &error),
        };
        let query = if stuck_only {
            InstanceQuery::stuck(now, stuck_after)
        } else {
            InstanceQuery::all()
        }
        .limit(PAGE);
        let rows = match processes.instances(process, &query).await {
            Ok(rows) => rows,
            Err(error) => return console.store_failure(&signed, &error),
        };
        sections.push((process.clone(), counts, rows));
    }
    let body = html! {
        p {
            @if stuck_only {
                "Stuck instances only (running, no progress for " (crate::web::span(stuck_after)) ", no timeout to come). "
                a href=(console.at("/processes")) { "All instances" }
            } @else {
                a #stuck-only href={(console.at("/processes")) "?stuck=1"} { "Stuck instances only" }
            }
        }
        @if sections.is_empty() { p.muted { "No process manager is configured: see ConsoleConfig::process." } }
        @for (process, counts, rows) in &sections {
            section.process data-process=(process) {
                h2 { (process) }
                p.counts {
                    span { "running " strong { (counts.running) } }
                    span { "completed " strong { (counts.completed) } }
                    span.bad { "failed " strong { (counts.failed) } }
                    span.bad { "stuck " strong { (counts.stuck) } }
                }
                @if rows.is_empty() { p.muted { "No instances." } } @else {
                    table.instances {
                        thead { tr {
                            th { "Instance" } th { "State" } th { "Version" } th { "Last input" }
                            th { "Pending commands" } th { "Next timeout" } th { "Progressed" }
                        } }
                        tbody { @for row in rows { (instance_row(&console, process, row)) } }
                    }
                }
            }
        }
    };
    console.page(&signed, "Process managers", body)
}

fn instance_row<S>(console: &Console<S>, process: &str, row: &InstanceRow) -> maud::Markup {
    html! {
        tr {
            td { a href={(console.at("/process")) "?type=" (query_value(process)) "&instance=" (query_value(&row.instance))} { (row.instance) } }
            td { span class={"state state-" (row.state)} { (row.state) } }
            td.num { (row.version) }
            td { (row.last_input) }
            td.num { (row.pending_commands) }
            td { @match row.next_timeout_at { Some(at) => (when(at)), None => "—" } }
            td { (when(row.progressed_at)) }
        }
    }
}

/// `?type=&instance=`.
#[derive(Deserialize)]
pub(crate) struct InstanceParams {
    #[serde(rename = "type")]
    process: String,
    instance: String,
}

/// `GET {base}/process?type=TYPE&instance=ID`: the instance's row and timeline.
pub(crate) async fn show<S: ConsoleStore + Clone>(
    State(console): State<Arc<Console<S>>>,
    Extension(signed): Extension<Signed>,
    Query(params): Query<InstanceParams>,
) -> Response {
    let processes = Processes::new(console.store.clone());
    let row = match console
        .store
        .instance(&params.process, &params.instance)
        .await
    {
        Ok(row) => row,
        Err(error) => return console.store_failure(&signed, &error),
    };
    let timeline = match processes.timeline(&params.process, &params.instance).await {
        Ok(timeline) => timeline,
        Err(error) => return console.store_failure(&signed, &error),
    };
    if row.is_none() && timeline.is_empty() {
        return console.failure(&signed, StatusCode::NOT_FOUND, "no such instance");
    }
    let stream = format!("{}-{}", params.process, params.instance);
    let body = html! {
        @if let Some(row) = &row {
            dl.facts {
                dt { "Process" } dd { (params.process) }
                dt { "State" } dd { span class={"state state-" (row.state)} { (row.state) } }
                dt { "Journal" } dd { a href={(console.at("/events")) "?stream=" (query_value(&stream))} { (stream) "@" (row.version) } }
                dt { "Correlation id" } dd {
                    @match row.correlation_id {
                        Some(id) => a href={(console.at("/correlation")) "?id=" (id)} { (id) },
                        None => "none",
                    }
                }
                dt { "Started" } dd { (when(row.started_at)) }
                dt { "Progressed" } dd { (when(row.progressed_at)) }
                dt { "Finished" } dd { @match row.finished_at { Some(at) => (when(at)), None => "—" } }
                dt { "Pending commands" } dd { (row.pending_commands) }
            }
        }
        h2 { "Timeline" }
        ol.timeline #timeline {
            @for entry in &timeline {
                li {
                    span.muted { (when(entry.at)) " · v" (entry.version) " · " (entry.position) }
                    @match &entry.kind {
                        TimelineKind::Received { what, payload, .. } => {
                            div { "received " strong { (what) } }
                            details { summary { "payload" } pre { (pretty(payload)) } }
                        }
                        TimelineKind::Decided { actions, .. } => {
                            div { "decided: " @if actions.is_empty() { "nothing" } @else { (actions.join("; ")) } }
                        }
                        TimelineKind::Live { key, due_at, .. } => {
                            div { "timeout " strong { (key) } " due " (when(*due_at)) }
                        }
                        TimelineKind::Parked { what, error, .. } => {
                            div.bad { "parked " strong { (what) } ": " (error) }
                        }
                        _ => { div { "(an entry this console does not know)" } }
                    }
                }
            }
        }
    };
    console.page(
        &signed,
        &format!("{} {}", params.process, params.instance),
        body,
    )
}
