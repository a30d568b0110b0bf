//! One blocking HTTP/1.0 request to the Toxiproxy API: the answer ends when the server closes
//! the connection, so no chunked bodies or keep-alive to handle.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::ToxiproxyError;

/// How long a call may take: the API answers a local call in a millisecond.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `method path` with `body` as JSON; the status and the body of a 2xx answer.
pub(super) fn call(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), ToxiproxyError> {
    let request = format!("{method} {path}");
    let unreachable = |source| ToxiproxyError::Unreachable {
        address: address.to_owned(),
        source,
    };
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(address).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes()).map_err(unreachable)?;
    stream.write_all(payload.as_bytes()).map_err(unreachable)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(unreachable)?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let malformed = || ToxiproxyError::Malformed {
        request: request.clone(),
        body: answer.clone(),
    };
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(malformed)?;
    if !(200..300).contains(&status) {
        return Err(ToxiproxyError::Refused {
            request,
            status,
            body: body.trim().to_owned(),
        });
    }
    Ok((status, body.to_owned()))
}
