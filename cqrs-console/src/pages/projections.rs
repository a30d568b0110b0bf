//! The projections page: every reader of the feed the store knows (projections, process
//! managers, consumers), with its state, checkpoint, lag (and a chart of the last minutes),
//! lease holder, breaker, dead letters and last error.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use cqrs_admin::inspect::position_label;
use maud::html;

use crate::auth::Signed;
use crate::pages::{chart, query_value};
use crate::samples::{lags, live};
use crate::web::{span, when, Console};

/// `GET {base}/`.
pub(crate) async fn page(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let overview = match console.inspector.overview().await {
        Ok(overview) => overview,
        Err(error) => return console.store_failure(&signed, &error),
    };
    let live = live(&console).await;
    let lag_events = lags(&overview, &live);
    let body = html! {
        p.muted { "Feed head " (position_label(overview.head)) " at " (when(overview.taken_at)) "." }
        @if overview.subscribers.is_empty() {
            p.muted { "No projection has saved a checkpoint yet." }
        } @else {
            table #projections {
                thead { tr {
                    th { "Name" } th { "Kind" } th { "State" } th { "Checkpoint" } th { "Lag (events)" }
                    th { "Lag (time)" } th { "Lease" } th { "Breaker" } th { "Dead letters" }
                    th { "Lag, last minutes" } th { "Last error" }
                } }
                tbody {
                    @for (sub, (_, lag)) in overview.subscribers.iter().zip(&lag_events) {
                        @let status = live.iter().find(|l| l.name == sub.name);
                        tr data-projection=(sub.name) {
                            td { strong { (sub.name) } }
                            td { (sub.kind.as_str()) }
                            td {
                                @match status {
                                    Some(s) => span class={"state state-" (s.state.to_string().replace(' ', "-"))} { (s.state) },
                                    None => span.muted title="its lease says; its state is known where it runs" { (sub.leader.as_str()) },
                                }
                            }
                            td.num {
                                @match sub.checkpoint { Some(p) => (position_label(p)), None => span.muted { "none" } }
                                @if let Some(at) = sub.checkpoint_updated_at { br; span.muted { (when(at)) } }
                            }
                            td.num { (lag) }
                            td.num { (span(Duration::from_secs_f64(sub.lag_seconds.max(0.0)))) }
                            td {
                                @match &sub.lease {
                                    Some(lease) => {
                                        (lease.owner) " " span.muted { "epoch " (lease.epoch) }
                                        br;
                                        @if lease.live { span.muted { "until " (when(lease.expires_at)) } }
                                        @else { span.bad { "expired " (when(lease.expires_at)) } }
                                    }
                                    None => span.muted { "none" },
                                }
                            }
                            td {
                                @match (status, &sub.breaker) {
                                    (Some(s), _) => (s.breaker),
                                    (None, Some(b)) => {
                                        @if b.is_tripped() { span.bad { (b.state) } } @else { (b.state) }
                                        br; span.muted title="as its runner recorded it" { (when(b.changed_at)) }
                                    }
                                    (None, None) => "—",
                                }
                            }
                            td.num {
                                @if sub.dead_letters == 0 { "0" } @else {
                                    a.bad href={(console.at("/dead-letters")) "?projection=" (query_value(&sub.name))} { (sub.dead_letters) }
                                }
                            }
                            td { (chart::lag(&console.samples.of(&sub.name))) }
                            td.error {
                                @if let Some(s) = status {
                                    @if let Some(error) = &s.last_error {
                                        (error)
                                        @if let Some(at) = s.last_error_at { br; span.muted { (when(at)) } }
                                    }
                                } @else if let Some(error) = sub.breaker.as_ref().and_then(|b| b.last_error.as_ref()) {
                                    (error)
                                }
                            }
                        }
                    }
                }
            }
            p.muted {
                "Lag in events: the worker's own count when it runs in this process, else the events of any type past its checkpoint. "
                "The chart samples every " (span(console.config.sample_every)) "."
            }
        }
    };
    console.page(&signed, "Projections", body)
}
