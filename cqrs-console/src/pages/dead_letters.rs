//! Dead letters: the list (every projection, or one), one letter with its event, and the
//! retry and skip buttons (POSTs with the session's CSRF token).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use cqrs_admin::inspect::{DeadLetterView, LetterFilter, RedriveRequest};
use cqrs_core::projection::{LetterTarget, Redrive};
use cqrs_core::Position;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::{forbidden, Signed};
use crate::pages::{pretty, query_value};
use crate::web::{when, Console};

/// Letters listed per projection.
const PAGE: usize = 200;

/// `?projection=`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    projection: Option<String>,
}

fn letter_link(console: &Console, letter: &DeadLetterView) -> String {
    format!(
        "{}?projection={}&position={}",
        console.at("/dead-letter"),
        query_value(&letter.projection),
        query_value(&letter.position.to_string())
    )
}

fn request_label(request: Option<RedriveRequest>) -> Markup {
    match request {
        Some(RedriveRequest::Retry) => html! { span.pending { "retry requested" } },
        Some(RedriveRequest::Skip) => html! { span.pending { "skip requested" } },
        Some(_) => html! { span.pending { "requested" } },
        None => html! { span.muted { "parked" } },
    }
}

/// `GET {base}/dead-letters[?projection=NAME]`.
pub(crate) async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    let mut filter = LetterFilter::new().limit(PAGE);
    if let Some(projection) = &query.projection {
        filter = filter.projection(projection.clone());
    }
    let letters = match console.inspector.dead_letters(&filter).await {
        Ok(letters) => letters,
        Err(error) => return console.store_failure(&signed, &error),
    };
    let body = html! {
        @if letters.is_empty() {
            p #no-letters { "No dead letters." }
        } @else {
            table #dead-letters {
                thead { tr {
                    th { "Projection" } th { "Position" } th { "Event" } th { "Key" }
                    th { "Parked" } th { "Error" } th { "Request" } th {}
                } }
                tbody {
                    @for letter in &letters {
                        tr data-position=(letter.position) {
                            td { (letter.projection) }
                            td.num { a href=(letter_link(&console, letter)) { (letter.position) } }
                            td { (letter.event_type) " from " (letter.stream_id) "@" (letter.version) }
                            td { @match &letter.key { Some(k) => (k), None => span.muted { "none" } } }
                            td { (when(letter.parked_at)) }
                            td.error { (letter.error) }
                            td { (request_label(letter.request)) }
                            td { (actions(&console, &signed, letter)) }
                        }
                    }
                }
            }
            p.muted { "At most " (PAGE) " letters, by projection then feed order." }
        }
    };
    console.page(&signed, "Dead letters", body)
}

/// The retry and skip buttons of one letter (none without a session: a bearer token reads).
fn actions(console: &Console, signed: &Signed, letter: &DeadLetterView) -> Markup {
    let Some(csrf) = signed.csrf() else {
        return html! { span.muted { "log in to act" } };
    };
    let position = letter.position.to_string();
    html! {
        form.inline method="post" action=(console.at("/dead-letter/retry")) {
            input type="hidden" name="projection" value=(letter.projection);
            input type="hidden" name="position" value=(position);
            input type="hidden" name="csrf" value=(csrf);
            button.retry type="submit" { "Retry" }
        }
        form.inline method="post" action=(console.at("/dead-letter/skip")) {
            input type="hidden" name="projection" value=(letter.projection);
            input type="hidden" name="position" value=(position);
            input type="hidden" name="csrf" value=(csrf);
            button.skip type="submit" { "Skip" }
        }
    }
}

/// `?projection=&position=`.
#[derive(Deserialize)]
pub(crate) struct LetterQuery {
    projection: String,
    position: String,
}

/// `GET {base}/dead-letter?projection=NAME&position=MAJOR/MINOR`: the letter and its event.
pub(crate) async fn show(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<LetterQuery>,
) -> Response {
    let Ok(position) = query.position.parse::<Position>() else {
        return console.failure(
            &signed,
            StatusCode::BAD_REQUEST,
            "a position is written as two numbers, major/minor",
        );
    };
    let (letter, event) = match console
        .inspector
        .dead_letter(&query.projection, position)
        .await
    {
        Ok(detail) => (detail.letter, detail.event),
        Err(error) => return console.store_failure(&signed, &error),
    };
    let body = html! {
        dl.facts {
            dt { "Projection" } dd { (letter.projection) }
            dt { "Position" } dd { (letter.position) }
            dt { "Event" } dd {
                a href={(console.at("/event")) "?stream=" (query_value(&letter.stream_id)) "&version=" (letter.version)} {
                    (letter.event_type) " from " (letter.stream_id) "@" (letter.version)
                }
            }
            dt { "Key" } dd { @match &letter.key { Some(k) => (k), None => "none" } }
            dt { "Parked" } dd { (when(letter.parked_at)) }
            dt { "Request" } dd { (request_label(letter.request)) }
        }
        h2 { "Error" }
        pre.error #letter-error { (letter.error) }
        h2 { "Payload" }
        @match &event {
            Some(event) => pre #payload { (pretty(&event.payload)) },
            None => p.muted { "The event is no longer in its stream." },
        }
        div.actions { (actions(&console, &signed, &letter)) }
    };
    console.page(&signed, "Dead letter", body)
}

/// The retry and skip forms' fields.
#[derive(Deserialize)]
pub(crate) struct ActionForm {
    projection: Option<String>,
    position: Option<String>,
    csrf: Option<String>,
}

/// `POST {base}/dead-letter/retry`: asks the projection's leading runner to apply the
/// letter again (with the rest of its key), then back to the list.
pub(crate) async fn retry(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    act(&console, &signed, form, Redrive::Retry).await
}

/// `POST {base}/dead-letter/skip`: asks the projection's leading runner to drop the letter.
pub(crate) async fn skip(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    act(&console, &signed, form, Redrive::Skip).await
}

async fn act(
    console: &Console,
    signed: &Signed,
    form: Result<Form<ActionForm>, FormRejection>,
    redrive: Redrive,
) -> Response {
    let form = form.ok().map(|Form(form)| form);
    if !signed.csrf_matches(form.as_ref().and_then(|f| f.csrf.as_deref())) {
        return forbidden(console, signed);
    }
    let (Some(projection), Some(position)) = (
        form.as_ref().and_then(|f| f.projection.clone()),
        form.as_ref()
            .and_then(|f| f.position.as_deref())
            .and_then(|p| p.parse::<Position>().ok()),
    ) else {
        return console.failure(
            signed,
            StatusCode::BAD_REQUEST,
            "which letter? (projection and position)",
        );
    };
    let target = LetterTarget::Position(position);
    let marked = match redrive {
        Redrive::Retry => console.inspector.retry(&projection, &target).await,
        Redrive::Skip => console.inspector.skip(&projection, &target).await,
    };
    match marked {
        Ok(marked) => {
            tracing::info!(%projection, %position, ?redrive, marked, "console: dead letter request");
            Redirect::to(&format!(
                "{}?projection={}",
                console.at("/dead-letters"),
                query_value(&projection)
            ))
            .into_response()
        }
        Err(error) => console.store_failure(signed, &error),
    }
}
