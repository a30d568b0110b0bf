//! Reading answers: the client returns `Ok` for 4xx and 5xx, so every call goes through here.

use elasticsearch::http::response::Response;
use serde_json::Value;

use crate::{EsError, Result};

/// The JSON body of a 2xx answer, or [`EsError::Status`] with the server's reason.
pub(crate) async fn json_ok(response: Response, operation: &'static str) -> Result<Value> {
    let status = response.status_code().as_u16();
    if (200..300).contains(&status) {
        return Ok(response.json::<Value>().await?);
    }
    Err(status_error(response, operation).await)
}

/// Any answer's status and JSON body (an empty or non-JSON body reads as `null`).
pub(crate) async fn json_any(response: Response) -> Result<(u16, Value)> {
    let status = response.status_code().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// [`EsError::Status`] from an error answer.
pub(crate) async fn status_error(response: Response, operation: &'static str) -> EsError {
    let status = response.status_code().as_u16();
    let reason = match response.text().await {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .map(|body| reason(&body))
            .unwrap_or(text),
        Err(e) => format!("(unreadable body: {e})"),
    };
    EsError::Status {
        operation,
        status,
        reason,
    }
}

/// `type: reason` of an error body (`{"error": {...}}`, or an error object itself).
pub(crate) fn reason(body: &Value) -> String {
    let error = body.get("error").unwrap_or(body);
    match error {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
            let why = error.get("reason").and_then(Value::as_str).unwrap_or("");
            match error
                .get("caused_by")
                .and_then(|c| c.get("reason"))
                .and_then(Value::as_str)
            {
                Some(cause) if !cause.is_empty() => format!("{kind}: {why} ({cause})"),
                _ => format!("{kind}: {why}"),
            }
        }
        Value::Null => "no reason given".to_owned(),
        other => other.to_string(),
    }
}

/// The error type (`index_not_found_exception`, ...) of an error body.
pub(crate) fn error_type(body: &Value) -> Option<&str> {
    body.get("error")?.get("type")?.as_str()
}

/// [`EsError::UnexpectedResponse`].
pub(crate) fn unexpected(operation: &'static str, detail: impl Into<String>) -> EsError {
    EsError::UnexpectedResponse {
        operation,
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_name_the_type_and_the_cause() {
        let body = json!({ "error": { "type": "mapper_parsing_exception", "reason": "failed to parse",
            "caused_by": { "type": "x", "reason": "For input string" } }, "status": 400 });
        assert_eq!(
            reason(&body),
            "mapper_parsing_exception: failed to parse (For input string)"
        );
        assert_eq!(reason(&json!({ "error": "plain" })), "plain");
        assert_eq!(error_type(&body), Some("mapper_parsing_exception"));
    }
}
