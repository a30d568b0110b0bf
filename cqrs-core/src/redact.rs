//! [`redact_url`]: connection URLs that are safe to print.

/// `url` with any password replaced by `****`, for logs and messages: the user information's
/// password (`postgres://app:****@db/app`, also without a scheme and with characters a URL
/// would encode written as they are) and the value of any parameter named like a password
/// (`?password=****`, `sslpassword=****`, libpq's `key = 'value'`). Everything else is kept, so
/// the output still says which server is meant. Text that is not a URL comes back unchanged.
///
/// ```
/// use cqrs_core::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/app"), "postgres://app:****@db:5432/app");
/// assert_eq!(redact_url("app:s3#cret@db/app"), "app:****@db/app");
/// assert_eq!(redact_url("host=db sslpassword=k3y"), "host=db sslpassword=****");
/// assert_eq!(redact_url("http://127.0.0.1:9200"), "http://127.0.0.1:9200");
/// ```
pub fn redact_url(url: &str) -> String {
    let start = match url.find("://") {
        Some(scheme_end) => scheme_end + 3,
        // `user:password@host...`, not libpq's `key=value` form (which starts with a key).
        None if url.contains('@') && !starts_with_key(url) => 0,
        None => return redact_params(url),
    };
    let rest = &url[start..];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    let Some(at) = userinfo_end(rest) else {
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        out.push_str(&rest[..authority_len]);
        out.push_str(&redact_params(&rest[authority_len..]));
        return out;
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => {
            out.push_str(&userinfo[..colon]);
            out.push_str(":****");
        }
        None => out.push_str(userinfo),
    }
    let host = &rest[at..];
    let host_len = host[1..]
        .find(['/', '?', '#'])
        .map_or(host.len(), |i| i + 1);
    out.push_str(&host[..host_len]);
    out.push_str(&redact_params(&host[host_len..]));
    out
}

/// Whether `text` starts as libpq's `key=value` form does: a key, then `=` (spaces around).
fn starts_with_key(text: &str) -> bool {
    let text = text.trim_start();
    let key = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    key > 0 && text[key..].trim_start().starts_with('=')
}

/// Where the user information of `rest` (a URL after its scheme) ends: its last `@` before the
/// path. Or, when the authority has none, an `@` further on after `user:` and a password that
/// held a `/`, `?` or `#` written as it is (not a port: `node:9200/orders@v2` has no password).
fn userinfo_end(rest: &str) -> Option<usize> {
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    if let Some(at) = authority.rfind('@') {
        return Some(at);
    }
    if authority.starts_with('[') {
        return None;
    }
    let colon = authority.find(':')?;
    let port = &authority[colon + 1..];
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest[authority_len..].find('@').map(|at| authority_len + at)
}

/// Masks the value of every parameter whose name ends in `password` (any case), in a URL's
/// query or a libpq `key=value` string, with spaces around the `=` and a quoted value
/// (`'a \'b'`) as libpq reads them. Whatever precedes the name, so text beside it never
/// keeps a value shown.
fn redact_params(text: &str) -> String {
    const NAME: &str = "password";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(NAME).map(|i| from + i) {
        from = found + NAME.len();
        let after = &text[from..];
        let spaced = after.len() - after.trim_start().len();
        if !after[spaced..].starts_with('=') {
            continue;
        }
        let value_start = from + spaced + 1;
        let value = &text[value_start..];
        let skipped = value.len() - value.trim_start().len();
        let value_start = value_start + skipped;
        let value_len = value_length(&text[value_start..]);
        out.push_str(&text[done..value_start]);
        out.push_str("****");
        done = value_start + value_len;
        from = done;
    }
    out.push_str(&text[done..]);
    out
}

/// The length of the parameter value `value` starts with: a libpq quoted value to its closing
/// quote (a backslash escapes the next character), else up to `&`, `#` or whitespace.
fn value_length(value: &str) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        return value.len();
    }
    value
        .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
        .unwrap_or(value.len())
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
            ("not a url", "not a url"),
            (
                "host=db password=s3cret user=app",
                "host=db password=**** user=app",
            ),
            ("password=s3cret", "password=****"),
            // Without a scheme: `DATABASE_URL=app:s3cret@db:5432/app`.
            ("app:s3cret@db:5432/app", "app:****@db:5432/app"),
            ("app:AbC9+/x==@db/app", "app:****@db/app"),
            ("app:a b@db/app", "app:****@db/app"),
            // A password with a character a URL must encode, written as it is.
            (
                "postgres://app:s3#cret@db/app",
                "postgres://app:****@db/app",
            ),
            (
                "postgres://app:s3/cret@db/app",
                "postgres://app:****@db/app",
            ),
            (
                "postgres://app:s3?cret@db/app?x=1",
                "postgres://app:****@db/app?x=1",
            ),
            // ... but a port and a path with an `@` are not one.
            (
                "http://node:9200/orders@v2/_doc/1",
                "http://node:9200/orders@v2/_doc/1",
            ),
            ("http://[::1]:9200/orders@v2", "http://[::1]:9200/orders@v2"),
            // Any parameter named like a password, however spaced or quoted.
            (
                "postgres://db/app?sslpassword=k3y&x=1",
                "postgres://db/app?sslpassword=****&x=1",
            ),
            (
                "postgres://db/app?mypassword=x",
                "postgres://db/app?mypassword=****",
            ),
            (
                "host=db sslpassword=k3y user=app",
                "host=db sslpassword=**** user=app",
            ),
            (
                "host=db password = s3cret user=app",
                "host=db password = **** user=app",
            ),
            (
                r"host=db password='s3 c\'ret' user=app",
                "host=db password=**** user=app",
            ),
            ("password=s3cret@db", "password=****"),
            // Text beside the key that is not ASCII.
            ("é password=s3cret", "é password=****"),
            ("épassword=s3cret", "épassword=****"),
            ("host=dé password=s3cret", "host=dé password=****"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn no_text_makes_it_panic_and_a_password_beside_other_text_stays_masked() {
        let odd = [
            "",
            "@",
            "://",
            "://@",
            ":@",
            "é@",
            "@é",
            "é://é@é",
            "a:é@b",
            "x:y/é@z",
            "[é",
            "password",
            "password=",
            "password='",
            "password='\\",
            "password = ",
            "ßpassword=é",
            "a=b@c:d",
            "postgres://u:p@",
            "postgres://:@/",
            "postgres://é:é#é@é/é?password=é&",
        ];
        for text in odd {
            let _ = redact_url(text);
        }
        for text in [
            "postgres://app:s3cret@db/é",
            "é:s3cret@db",
            "hôte=db password=s3cret",
            "postgres://db/é?sslpassword=s3cret",
        ] {
            assert!(!redact_url(text).contains("s3cret"), "{text}");
        }
    }
}
