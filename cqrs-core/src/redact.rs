//! [`redact_url`]: connection URLs that are safe to print.

/// `url` with any password replaced by `****`, for logs and messages: the user information's
/// password (`postgres://app:****@db/app`) and a `password=` query parameter
/// (`?password=****`). Everything else is kept, so the output still says which server is meant.
/// Text that is not a URL comes back unchanged.
///
/// ```
/// use cqrs_core::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/app"), "postgres://app:****@db:5432/app");
/// assert_eq!(redact_url("http://127.0.0.1:9200"), "http://127.0.0.1:9200");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_query(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":****");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(&rest[authority_len..]));
    out
}

/// Masks the value of every `password=` parameter: after `?` or `&` in a URL's query, after
/// whitespace or at the start in a libpq `key=value` string.
fn redact_query(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find(KEY) {
        let before = &rest[..found];
        let is_key = if before.is_empty() {
            out.is_empty() || out.ends_with(['?', '&', ' ', '\t'])
        } else {
            before.ends_with(['?', '&', ' ', '\t'])
        };
        out.push_str(&rest[..found + KEY.len()]);
        rest = &rest[found + KEY.len()..];
        if is_key {
            out.push_str("****");
            rest = &rest[rest.find(['&', '#', ' ', '\t']).unwrap_or(rest.len())..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_masked_and_nothing_else_changes() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:****@db:5432/app",
            ),
            ("postgres://app:p@ss@db/app", "postgres://app:****@db/app"),
            (
                "http://elastic:x%40y@[::1]:9200/",
                "http://elastic:****@[::1]:9200/",
            ),
            (
                "postgres://db/app?sslmode=require&password=s3cret&x=1",
                "postgres://db/app?sslmode=require&password=****&x=1",
            ),
            (
                "postgres://db/app?password=s3cret#f",
                "postgres://db/app?password=****#f",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            ("http://127.0.0.1:9200", "http://127.0.0.1:9200"),
            (
                "postgres://db/app?mypassword=x",
                "postgres://db/app?mypassword=x",
            ),
            ("not a url", "not a url"),
            (
                "host=db password=s3cret user=app",
                "host=db password=**** user=app",
            ),
            ("password=s3cret", "password=****"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }
}
