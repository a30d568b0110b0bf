//! The event browser: a stream's events, one event with its payload and metadata, and
//! every event of one correlation id (what one request caused, across streams).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use cqrs_admin::inspect::EventView;
use cqrs_admin::ErrorClass;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Signed;
use crate::pages::{pretty, query_value};
use crate::web::{when, Console};

/// Events of a stream shown per page.
const STREAM_PAGE: usize = 200;
/// Events a correlation shows at most.
const CORRELATION_SHOWN: usize = 500;

fn event_link(console: &Console, event: &EventView) -> String {
    format!(
        "{}?stream={}&version={}",
        console.at("/event"),
        query_value(&event.stream_id),
        event.version
    )
}

fn correlation_link(console: &Console, id: Uuid) -> String {
    format!("{}?id={id}", console.at("/correlation"))
}

fn events_table(console: &Console, events: &[EventView], with_stream: bool) -> Markup {
    html! {
        table #events {
            thead { tr {
                @if with_stream { th { "Stream" } }
                th { "Version" } th { "Position" } th { "Type" } th { "Recorded" } th { "Correlation" }
            } }
            tbody {
                @for event in events {
                    tr {
                        @if with_stream {
                            td { a href={(console.at("/events")) "?stream=" (query_value(&event.stream_id))} { (event.stream_id) } }
                        }
                        td.num { a href=(event_link(console, event)) { (event.version) } }
                        td.num { (event.position) }
                        td { a href=(event_link(console, event)) { (event.event_type) } }
                        td { (when(event.recorded_at)) }
                        td {
                            @match event.correlation_id {
                                Some(id) => a href=(correlation_link(console, id)) { (id.simple().to_string().get(..8).unwrap_or_default()) "…" },
                                None => span.muted { "none" },
                            }
                        }
                    }
                }
            }
        }
    }
}

fn stream_form(console: &Console, stream: &str) -> Markup {
    html! {
        form.search method="get" action=(console.at("/events")) {
            label for="stream" { "Stream" }
            input #stream type="text" name="stream" value=(stream) placeholder="order-42";
            button type="submit" { "Show" }
        }
        form.search method="get" action=(console.at("/correlation")) {
            label for="correlation" { "Correlation id" }
            input #correlation type="text" name="id" placeholder="uuid";
            button type="submit" { "Follow" }
        }
    }
}

/// `?stream=&from=`.
#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    stream: Option<String>,
    from: Option<u64>,
}

/// `GET {base}/events[?stream=ID[&from=VERSION]]`: the form, and the stream's events.
pub(crate) async fn stream(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<StreamQuery>,
) -> Response {
    let Some(name) = query.stream.filter(|s| !s.is_empty()) else {
        return console.page(&signed, "Events", stream_form(&console, ""));
    };
    let from = query.from.unwrap_or(1);
    let (events, next) = match console.inspector.stream(&name, from, STREAM_PAGE).await {
        Ok(view) => (view.events, view.next_version),
        Err(error) if error.class() == ErrorClass::NotFound => (Vec::new(), None),
        Err(error) => return console.store_failure(&signed, &error),
    };
    let body = html! {
        (stream_form(&console, &name))
        h2 { "Stream " (name) }
        @if events.is_empty() { p.muted { "No events." } } @else { (events_table(&console, &events, false)) }
        @if let Some(next) = next {
            p { a href={(console.at("/events")) "?stream=" (query_value(&name)) "&from=" (next)} { "Later events" } }
        }
    };
    console.page(&signed, "Events", body)
}

/// `?stream=&version=`.
#[derive(Deserialize)]
pub(crate) struct EventQuery {
    stream: String,
    version: u64,
}

/// `GET {base}/event?stream=ID&version=N`: one event, payload and metadata pretty-printed.
pub(crate) async fn one(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<EventQuery>,
) -> Response {
    let event = match console
        .inspector
        .stream(&query.stream, query.version, 1)
        .await
    {
        Ok(view) => view.events.into_iter().find(|e| e.version == query.version),
        Err(error) => return console.store_failure(&signed, &error),
    };
    let Some(event) = event else {
        return console.failure(&signed, StatusCode::NOT_FOUND, "no such event");
    };
    let metadata = &event;
    let body = html! {
        dl.facts {
            dt { "Stream" } dd { a href={(console.at("/events")) "?stream=" (query_value(&event.stream_id))} { (event.stream_id) } }
            dt { "Version" } dd { (event.version) }
            dt { "Position" } dd { (event.position) }
            dt { "Type" } dd #event-type { (event.event_type) " (schema " (event.schema_version) ")" }
            dt { "Recorded" } dd { (when(event.recorded_at)) }
            dt { "Event id" } dd { (metadata.event_id) }
            dt { "Correlation id" } dd {
                @match metadata.correlation_id {
                    Some(id) => a #follow-correlation href=(correlation_link(&console, id)) { (id) " — everything it caused" },
                    None => "none",
                }
            }
            dt { "Causation id" } dd { @match metadata.causation_id { Some(id) => (id), None => "none" } }
            dt { "Command id" } dd { @match metadata.command_id { Some(id) => (id), None => "none" } }
        }
        h2 { "Payload" }
        pre #payload { (pretty(&event.payload)) }
        h2 { "Headers" }
        @if metadata.headers.is_empty() { p.muted { "None." } } @else {
            table #headers { tbody { @for (name, value) in &metadata.headers { tr { th { (name) } td { (value) } } } } }
        }
    };
    console.page(&signed, "Event", body)
}

/// `?id=`.
#[derive(Deserialize)]
pub(crate) struct CorrelationQuery {
    id: String,
}

/// `GET {base}/correlation?id=UUID`: every event carrying that correlation id, in feed order.
pub(crate) async fn correlation(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<CorrelationQuery>,
) -> Response {
    let Ok(id) = query.id.trim().parse::<Uuid>() else {
        return console.failure(
            &signed,
            StatusCode::BAD_REQUEST,
            "a correlation id is a UUID",
        );
    };
    let found = match console
        .inspector
        .correlation(id, CORRELATION_SHOWN + 1)
        .await
    {
        Ok(correlation) => correlation.events,
        Err(error) => return console.store_failure(&signed, &error),
    };
    let more = found.len() > CORRELATION_SHOWN;
    let found = &found[..found.len().min(CORRELATION_SHOWN)];
    let streams = found
        .iter()
        .map(|e| e.stream_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let body = html! {
        p { "Correlation id " code { (id) } ": " (found.len()) @if more { "+" } " event(s) across " (streams) " stream(s)." }
        @if more { p.muted { "Only the first " (CORRELATION_SHOWN) " are shown." } }
        @if !found.is_empty() { (events_table(&console, found, true)) }
    };
    console.page(&signed, "Correlation", body)
}
