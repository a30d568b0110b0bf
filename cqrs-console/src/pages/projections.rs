//! The projections page: each projection's state, checkpoint, lag (with a chart of the last
//! minutes), breaker, dead letters and last error.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use cqrs_core::projection::ProjectionStatus;
use cqrs_core::Position;
use maud::html;

use crate::auth::Signed;
use crate::pages::{chart, query_value};
use crate::samples::{events_after, COUNT_CAP};
use crate::store::ConsoleStore;
use crate::web::{span, when, Console};

/// How many dead letters the overview counts at most.
const LETTERS_COUNTED: usize = 1000;

struct Row {
    name: String,
    checkpoint: Option<Position>,
    behind: u64,
    letters: usize,
    live: Option<ProjectionStatus>,
}

/// `GET {base}/`.
pub(crate) async fn page<S: ConsoleStore>(
    State(console): State<Arc<Console<S>>>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let live = match &console.config.live {
        Some(live) => live.statuses().await,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for name in &console.config.projections {
        let checkpoint = match console.store.load_checkpoint(name).await {
            Ok(checkpoint) => checkpoint,
            Err(error) => return console.store_failure(&signed, &error),
        };
        let status = live.iter().find(|s| &s.name == name).cloned();
        let behind = match &status {
            Some(status) => status.lag_events,
            None => match events_after(&console.store, checkpoint.unwrap_or(Position::START)).await
            {
                Ok(n) => n,
                Err(error) => return console.store_failure(&signed, &error),
            },
        };
        let letters = match console
            .store
            .dead_letters(name, Position::START, LETTERS_COUNTED + 1)
            .await
        {
            Ok(letters) => letters.len(),
            Err(error) => return console.store_failure(&signed, &error),
        };
        rows.push(Row {
            name: name.clone(),
            checkpoint,
            behind,
            letters,
            live: status,
        });
    }
    let now = time::OffsetDateTime::now_utc();
    let body = html! {
        @if rows.is_empty() {
            p.muted { "No projection is configured: see ConsoleConfig::projection." }
        } @else {
            table #projections {
                thead { tr {
                    th { "Projection" } th { "State" } th { "Checkpoint" } th { "Lag (events)" }
                    th { "Lag (time)" } th { "Breaker" } th { "Dead letters" } th { "Lag, last minutes" }
                    th { "Last error" }
                } }
                tbody {
                    @for row in &rows {
                        tr data-projection=(row.name) {
                            td { strong { (row.name) } }
                            td {
                                @match &row.live {
                                    Some(s) => span class={"state state-" (s.state.to_string().replace(' ', "-"))} { (s.state) },
                                    None => span.muted { "not in this process" },
                                }
                            }
                            td.num { @match row.checkpoint { Some(p) => (p), None => span.muted { "none" } } }
                            td.num {
                                (row.behind)
                                @if row.live.is_none() && row.behind >= u64::try_from(COUNT_CAP).unwrap_or(u64::MAX) { "+" }
                            }
                            td.num { @match &row.live { Some(s) => (span(s.unapplied_age(now))), None => "—" } }
                            td { @match &row.live { Some(s) => (s.breaker), None => "—" } }
                            td.num {
                                @if row.letters == 0 { "0" } @else {
                                    a.bad href={(console.at("/dead-letters")) "?projection=" (query_value(&row.name))} {
                                        (row.letters.min(LETTERS_COUNTED))
                                        @if row.letters > LETTERS_COUNTED { "+" }
                                    }
                                }
                            }
                            td { (chart::lag(&console.samples.of(&row.name))) }
                            td.error {
                                @if let Some(s) = &row.live {
                                    @if let Some(error) = &s.last_error {
                                        (error)
                                        @if let Some(at) = s.last_error_at { br; span.muted { (when(at)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted {
                "Lag in events: the worker's own count when it runs in this process, else the events of any type after its checkpoint (up to "
                (COUNT_CAP) "). Samples every " (span(console.config.sample_every)) "."
            }
        }
    };
    console.page(&signed, "Projections", body)
}
