//! Process-manager instances: per process manager the store knows, its counts and a page of
//! instances (all, or the stuck ones); one instance with its timeline.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use cqrs_admin::inspect::{InstanceFilterView, InstanceView};
use maud::html;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::Signed;
use crate::pages::{pretty, query_value};
use crate::web::{span, when, Console};

/// Instances listed per process.
const PAGE: usize = 100;

/// `?stuck=1`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    stuck: Option<String>,
}

/// `GET {base}/processes[?stuck=1]`.
pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    let stuck_only = query.stuck.is_some_and(|s| s == "1" || s == "true");
    let now = OffsetDateTime::now_utc();
    let stuck_after = console.config.stuck_after;
    let types = match console.inspector.processes().await {
        Ok(types) => types,
        Err(error) => return console.store_failure(&signed, &error),
    };
    let mut sections = Vec::new();
    for process in &types {
        // Counts come from cqrs-core's status over the store the inspector reads (parked
        // instances count as failed there, as in the lists, whichever partition parked them).
        let processes = match console.inspector.process_status(process).await {
            Ok(processes) => processes,
            Err(error) => return console.store_failure(&signed, &error),
        };
        let counts = match processes.counts(process, now, stuck_after).await {
            Ok(counts) => counts,
            Err(error) => return console.store_failure(&signed, &error.into()),
        };
        let filter = if stuck_only {
            InstanceFilterView::Stuck
        } else {
            InstanceFilterView::All
        };
        let rows = match console
            .inspector
            .instances(process, filter, stuck_after, None, PAGE)
            .await
        {
            Ok(rows) => rows,
            Err(error) => return console.store_failure(&signed, &error),
        };
        sections.push((process.clone(), counts, rows));
    }
    let body = html! {
        p {
            @if stuck_only {
                "Stuck instances only (running, no progress for " (span(stuck_after)) ", no timeout to come). "
                a href=(console.at("/processes")) { "All instances" }
            } @else {
                a #stuck-only href={(console.at("/processes")) "?stuck=1"} { "Stuck instances only" }
            }
        }
        @if sections.is_empty() { p.muted #no-processes { "No process manager has run on this store yet." } }
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

fn instance_row(console: &Console, process: &str, row: &InstanceView) -> maud::Markup {
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
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(params): Query<InstanceParams>,
) -> Response {
    let (row, timeline) = match console
        .inspector
        .instance(&params.process, &params.instance)
        .await
    {
        Ok(detail) => (detail.status, detail.timeline),
        Err(error) => return console.store_failure(&signed, &error),
    };
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
                    div class={"entry entry-" (entry.kind)} {
                        (entry.kind)
                        @if !entry.what.is_empty() { " " strong { (entry.what) } }
                        @if !entry.details.is_empty() { ": " (entry.details.join("; ")) }
                    }
                    @if let Some(payload) = &entry.payload {
                        details { summary { "payload" } pre { (pretty(payload)) } }
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
