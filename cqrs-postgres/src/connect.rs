//! Connecting from a URL: refused at once when malformed, and a first connection tried at once,
//! so a wrong address fails within seconds naming the address and the cause, never the
//! password. And the pool options a store's pool is made with ([`pool_options`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::PgError;

/// How long the first connection may take before [`PgEventStore::connect`] gives up: a
/// refused port or an unknown host fails at once; an address that never answers fails after
/// this.
///
/// [`PgEventStore::connect`]: crate::PgEventStore::connect
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of `connections` on `url`, after one connection to it succeeded.
pub(crate) async fn pool(url: &str, connections: u32) -> Result<PgPool, PgError> {
    let options = options(url)?;
    let address = address(&options);
    let first = tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await;
    let failed = |source| PgError::Connect {
        address: address.clone(),
        source,
    };
    match first {
        Ok(Ok(conn)) => {
            // Only a check: the pool makes its own connections.
            if let Err(error) = conn.close().await {
                tracing::debug!(%error, "closing the first connection failed");
            }
        }
        Ok(Err(error)) => return Err(failed(error)),
        Err(_) => {
            return Err(failed(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            ))))
        }
    }
    Ok(pool_options()
        .max_connections(connections)
        .connect_lazy_with(options))
}

/// How long a pooled connection may sit idle and still be handed out unchecked by
/// [`pool_options`].
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// sqlx's pool options, except that a connection is checked before it is handed out only when
/// it sat idle for [`CHECK_IDLE_AFTER`] or longer. [`PgEventStore::connect`] makes its pool
/// with them; build yours from them to get the same.
///
/// sqlx's default checks every connection with a round trip to the server before handing it
/// out, so each pooled statement costs two round trips: with the server a network hop away,
/// a plain append or a load waits for both. A connection used within the last second is
/// almost surely alive, and is handed out at once (HikariCP skips its check the same way,
/// within 500 ms of the last use); one idle for longer (after a quiet spell, in which a
/// restart, a failover or an idle timeout may have closed it) is checked, and replaced if the
/// check fails. The price: a connection the server closed within that second fails the
/// statement that next uses it, as a transient error ([`PgError::is_transient`]), having
/// written nothing (the server was gone before it was sent); sqlx then discards the
/// connection, and the retry gets a new one.
///
/// ```no_run
/// # async fn demo() -> Result<(), sqlx::Error> {
/// let pool = cqrs_postgres::pool_options()
///     .max_connections(16)
///     .connect("postgres://app@db.internal/app")
///     .await?;
/// let store = cqrs_postgres::PgEventStore::new(pool);
/// # Ok(()) }
/// ```
///
/// [`PgEventStore::connect`]: crate::PgEventStore::connect
pub fn pool_options() -> PgPoolOptions {
    pool_options_checking_idle(CHECK_IDLE_AFTER)
}

/// [`pool_options`], checking connections idle for `after` or longer (`Duration::ZERO`
/// checks every one, as sqlx's default).
pub fn pool_options_checking_idle(after: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| Box::pin(check_if_idle(conn, meta, after)))
}

/// Whether `conn` may be handed out: yes when used within `after`; otherwise when it answers
/// a round trip. A connection that does not answer is closed by the pool, which then hands out
/// another.
async fn check_if_idle(
    conn: &mut PgConnection,
    meta: PoolConnectionMetadata,
    after: Duration,
) -> Result<bool, sqlx::Error> {
    if !needs_check(meta.idle_for, after) {
        return Ok(true);
    }
    match conn.ping().await {
        Ok(()) => Ok(true),
        Err(error) => {
            tracing::debug!(%error, "an idle connection failed its check; replaced");
            Ok(false)
        }
    }
}

/// Whether a connection idle for `idle_for` is checked before use.
fn needs_check(idle_for: Duration, after: Duration) -> bool {
    idle_for >= after
}

/// The connect options of `url`, or why it was refused (without its password).
fn options(url: &str) -> Result<PgConnectOptions, PgError> {
    let parsed = url::Url::parse(url).map_err(|error| invalid(url, &error.to_string()))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(invalid(
            url,
            "it must start with postgres:// or postgresql://",
        ));
    }
    PgConnectOptions::from_str(url).map_err(|error| invalid(url, &error.to_string()))
}

/// A refused URL: `reason` with any password of `url` masked.
fn invalid(url: &str, reason: &str) -> PgError {
    let mut reason = reason.to_owned();
    for secret in secrets(url) {
        if !secret.is_empty() {
            reason = reason.replace(&secret, "***");
        }
    }
    PgError::InvalidUrl { reason }
}

/// The passwords `url` may carry, as written and decoded: in its user info and in a
/// `password=` parameter. Found by hand, since the URL may not parse.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some((user_info, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = user_info.split_once(':') {
            found.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some(password) = pair.strip_prefix("password=") {
                found.push(password.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|s| {
            url::form_urlencoded::parse(format!("p={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    found.extend(decoded);
    found
}

/// Where `options` connect: `host:port`, or the socket's path.
fn address(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_checked_once_it_sat_idle_for_the_threshold() {
        let after = CHECK_IDLE_AFTER;
        assert!(!needs_check(Duration::ZERO, after), "just released");
        assert!(!needs_check(after - Duration::from_millis(1), after));
        assert!(needs_check(after, after));
        assert!(needs_check(Duration::from_secs(3600), after));
        assert!(
            needs_check(Duration::ZERO, Duration::ZERO),
            "ZERO checks every one"
        );
    }

    #[test]
    fn a_refused_url_never_shows_its_password() {
        for url in [
            "postgres://app:pa%40ss@host:nope/db",
            "app:pa@ss@host/db",
            "postgres://app@host:nope/db?password=pa%40ss",
        ] {
            let error = options(url).expect_err(url).to_string();
            assert!(
                !error.contains("pa@ss") && !error.contains("pa%40ss"),
                "{error}"
            );
        }
        assert!(secrets("postgres://a:b%40c@h/d").contains(&"b@c".to_owned()));
    }
}
