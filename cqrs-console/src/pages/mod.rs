//! The pages, one file per section: each handler reads the store, renders with maud (which
//! escapes every value) and answers a whole page.

pub(crate) mod chart;
pub(crate) mod dead_letters;
pub(crate) mod events;
pub(crate) mod processes;
pub(crate) mod projections;

/// Pretty-printed JSON for a `<pre>`; maud escapes it when rendered.
pub(crate) fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `value` made safe for a query string (RFC 3986 unreserved characters kept, the rest
/// percent-encoded).
pub(crate) fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::query_value("a b/c&d=<é>"),
            "a%20b%2Fc%26d%3D%3C%C3%A9%3E"
        );
        assert_eq!(super::query_value("order-1_x.y~"), "order-1_x.y~");
    }
}
