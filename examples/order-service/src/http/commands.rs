//! The command handlers: each parses its body, runs one command through the [`Shop`]'s
//! repository with the request's correlation id, and answers the outcome (with the feed
//! position of its last event) or a [`Problem`].
//!
//! [`Shop`]: quickstart::shop::Shop

use std::fmt::Display;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_core::process::ProcessManager as _;
use cqrs_core::{CommandContext, CommandError, CommandId, CommandOutcome, DomainEvent, StreamId};
use quickstart::inventory::InventoryCommand;
use quickstart::order::{OrderCommand, OrderError, OrderLine, OrderStatus};
use quickstart::saga::orchestrated::OrderFulfilment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Correlation, Problem, COMMAND_ID, FEED_POSITION};
use crate::service;

type AppState = State<Arc<service::State>>;

/// `POST /orders/{id}`.
#[derive(Deserialize)]
struct Place {
    customer: String,
    lines: Vec<OrderLine>,
}

/// `POST /orders/{id}/cancel`.
#[derive(Deserialize)]
struct Cancel {
    reason: String,
}

/// `POST /stock/{sku}/restock`.
#[derive(Deserialize)]
struct Restock {
    quantity: u64,
}

/// What every command request carries besides its body: the correlation id (set by the
/// middleware) and the context its command runs with (that id, and the `X-Command-Id` if sent).
pub(crate) struct Sent {
    correlation: Correlation,
    context: CommandContext,
}

impl<S: Send + Sync> FromRequestParts<S> for Sent {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let correlation = (parts.extensions.get::<Correlation>().copied())
            .ok_or_else(|| Problem::internal("the request has no correlation id"))?;
        let context = context(correlation, &parts.headers)?;
        Ok(Self {
            correlation,
            context,
        })
    }
}

/// Places order `id`: 201.
pub(crate) async fn place(
    State(state): AppState,
    Path(id): Path<String>,
    sent: Sent,
    body: Bytes,
) -> Result<Response, Problem> {
    let Place { customer, lines } = parse(&body)?;
    let command = OrderCommand::Place { customer, lines };
    order(&state, &id, &command, sent, StatusCode::CREATED).await
}

/// Confirms order `id`.
pub(crate) async fn confirm(
    State(state): AppState,
    Path(id): Path<String>,
    sent: Sent,
) -> Result<Response, Problem> {
    order(&state, &id, &OrderCommand::Confirm, sent, StatusCode::OK).await
}

/// Ships order `id`.
pub(crate) async fn ship(
    State(state): AppState,
    Path(id): Path<String>,
    sent: Sent,
) -> Result<Response, Problem> {
    order(&state, &id, &OrderCommand::Ship, sent, StatusCode::OK).await
}

/// Cancels order `id`.
pub(crate) async fn cancel(
    State(state): AppState,
    Path(id): Path<String>,
    sent: Sent,
    body: Bytes,
) -> Result<Response, Problem> {
    let Cancel { reason } = parse(&body)?;
    order(
        &state,
        &id,
        &OrderCommand::Cancel { reason },
        sent,
        StatusCode::OK,
    )
    .await
}

/// Restocks item `sku`.
pub(crate) async fn restock(
    State(state): AppState,
    Path(sku): Path<String>,
    Sent {
        correlation,
        context,
    }: Sent,
    body: Bytes,
) -> Result<Response, Problem> {
    let Restock { quantity } = parse(&body)?;
    let command = InventoryCommand::Restock { quantity };
    let outcome = state
        .shop
        .stock
        .execute_with(&sku, &command, context)
        .await
        .map_err(problem)?;
    Ok(answer(StatusCode::OK, &sku, correlation, &outcome))
}

/// Runs an order command and answers `status` with its outcome: a rejection because the order
/// was never placed is 404.
async fn order(
    state: &service::State,
    id: &str,
    command: &OrderCommand,
    Sent {
        correlation,
        context,
    }: Sent,
    status: StatusCode,
) -> Result<Response, Problem> {
    order_id(id)?;
    match state.shop.orders.execute_with(id, command, context).await {
        Ok(outcome) => Ok(answer(status, id, correlation, &outcome)),
        Err(CommandError::Rejected(error)) if never_placed(&error) => {
            Err(Problem::not_found(format!("order {id} was never placed")))
        }
        Err(error) => Err(problem(error)),
    }
}

/// `id` if the saga can follow an order of that id too (its journal is the stream
/// `order_fulfilment-{id}`, longer than the order's own `order-{id}`), or 400.
fn order_id(id: &str) -> Result<(), Problem> {
    match StreamId::with_category(OrderFulfilment::TYPE, id) {
        Ok(_) => Ok(()),
        Err(error) => Err(Problem::bad_request(format!(
            "the order id cannot be one: {error}"
        ))),
    }
}

/// Whether the order refused a command because it does not exist.
fn never_placed(error: &OrderError) -> bool {
    matches!(
        error,
        OrderError::CannotConfirm(OrderStatus::New)
            | OrderError::CannotShip(OrderStatus::New)
            | OrderError::CannotCancel(OrderStatus::New)
    )
}

/// The body as `T`, or 400 saying why.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|error| {
        Problem::bad_request(format!("the body is not the JSON expected: {error}"))
    })
}

/// The command's context: the request's correlation id, and its command id if it sent one.
fn context(correlation: Correlation, headers: &HeaderMap) -> Result<CommandContext, Problem> {
    let context = CommandContext::new().correlation_id(correlation.0);
    match headers.get(COMMAND_ID) {
        None => Ok(context),
        Some(value) => (value.to_str().ok())
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .map(|id| context.command_id(CommandId::from_uuid(id)))
            .ok_or_else(|| Problem::bad_request("the X-Command-Id header is not a UUID")),
    }
}

/// The problem a failed command answers: 422 for a rejection (with the error's code and
/// message) and for a command id used on another stream, and by the error's kind for a store
/// failure (409 for a conflict after the retries, 503 for a store that is down).
fn problem<E>(error: CommandError<E>) -> Problem
where
    E: std::error::Error + Serialize + Display + 'static,
{
    match error {
        CommandError::Rejected(rejection) => {
            Problem::rejected(code(&rejection), rejection.to_string())
        }
        CommandError::Store(cqrs_core::Error::CommandIdReused { .. }) => {
            Problem::command_id_reused()
        }
        CommandError::Store(error) => {
            tracing::warn!(error = &error as &dyn std::error::Error, kind = %error.kind(), "command failed");
            Problem::from_kind(error.kind(), error.to_string())
        }
        other => Problem::internal(other.to_string()),
    }
}

/// An error's code: its variant's name, as serde writes the enum.
fn code(error: &impl Serialize) -> String {
    match serde_json::to_value(error) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        _ => "rejected".to_owned(),
    }
}

/// The answer to a command that succeeded: what it recorded, where (the `X-Feed-Position`
/// header too), and the correlation id.
fn answer<E: DomainEvent>(
    status: StatusCode,
    id: &str,
    correlation: Correlation,
    outcome: &CommandOutcome<E>,
) -> Response {
    let position = outcome.position.map(|p| p.to_string());
    let events: Vec<&str> = outcome.events.iter().map(DomainEvent::event_type).collect();
    let body = json!({
        "id": id,
        "version": outcome.version.get(),
        "position": position,
        "events": events,
        "duplicate": outcome.duplicate,
        "attempts": outcome.attempts,
        "correlation_id": correlation.0.to_string(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = position.and_then(|p| HeaderValue::from_str(&p).ok()) {
        response.headers_mut().insert(FEED_POSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickstart::inventory::InventoryError;

    #[test]
    fn an_errors_code_is_its_variants_name() {
        assert_eq!(code(&OrderError::NoLines), "NoLines");
        assert_eq!(
            code(&OrderError::CannotShip(OrderStatus::Placed)),
            "CannotShip"
        );
        assert_eq!(code(&InventoryError::ZeroQuantity), "ZeroQuantity");
    }

    #[test]
    fn only_a_rejection_of_a_new_order_means_it_does_not_exist() {
        assert!(never_placed(&OrderError::CannotCancel(OrderStatus::New)));
        assert!(!never_placed(&OrderError::CannotCancel(
            OrderStatus::Shipped
        )));
        assert!(!never_placed(&OrderError::AlreadyPlaced));
    }
}
