//! [`ConsoleConfig`]: whether the console is on, its token, what it shows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::live::LiveStatus;

/// How the console is set up. [`ConsoleConfig::default`] is off: its router answers nothing.
///
/// ```
/// use cqrs_console::ConsoleConfig;
///
/// let config = ConsoleConfig::enabled("a long random token");
/// assert!(config.is_enabled());
/// // The token never shows.
/// assert!(!format!("{config:?}").contains("random"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct ConsoleConfig {
    pub(crate) token: Option<Token>,
    pub(crate) base_path: String,
    pub(crate) live: Option<Arc<dyn LiveStatus>>,
    pub(crate) sample_every: Duration,
    pub(crate) samples_kept: usize,
    pub(crate) stuck_after: Duration,
    pub(crate) secure_cookie: bool,
    /// At most this many wrong tokens per this window, from anyone.
    pub(crate) failed_logins: (u32, Duration),
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            token: None,
            base_path: "/console".to_owned(),
            live: None,
            sample_every: Duration::from_secs(5),
            samples_kept: 60,
            stuck_after: Duration::from_secs(300),
            secure_cookie: false,
            failed_logins: (10, Duration::from_secs(60)),
        }
    }
}

impl ConsoleConfig {
    /// The console off ([`Default`]): [`router`](crate::router) returns a router with no route.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The console on, behind `token`: every request must carry it as `Authorization: Bearer
    /// <token>`, or come with the session cookie the login form sets when given it. An empty
    /// token leaves the console off (a console without a secret is never served).
    pub fn enabled(token: impl Into<String>) -> Self {
        let token = token.into();
        Self {
            token: (!token.is_empty()).then_some(Token(token)),
            ..Self::default()
        }
    }

    /// At most `max` wrong tokens (at the login form or as bearer tokens, from any client) per
    /// `window` (default 10 per minute); past that, logins and bearer requests get `429 Too
    /// Many Requests` with `Retry-After`, without their token being checked, until the window
    /// has room again. Sessions already open go on working.
    pub fn failed_logins(mut self, max: u32, window: Duration) -> Self {
        self.failed_logins = (max.max(1), window);
        self
    }

    /// Whether [`router`](crate::router) serves pages.
    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Where the console's routes start (default `/console`): the router serves
    /// `{base_path}/...`, to be merged into the service's router.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let trimmed = path.trim_end_matches('/');
        self.base_path = if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// Where the running workers' statuses come from (state, breaker, lag in events and
    /// time, last error): the service's [`ProjectionHandle`](cqrs_core::projection::ProjectionHandle)s.
    /// Without it the console shows what the store knows (checkpoint, lag, lease, dead
    /// letters).
    pub fn live_status(mut self, live: impl LiveStatus + 'static) -> Self {
        self.live = Some(Arc::new(live));
        self
    }

    /// How often the lag chart takes a sample (default 5 s) and how many it keeps (default
    /// 60: five minutes).
    pub fn samples(mut self, every: Duration, kept: usize) -> Self {
        self.sample_every = every.max(Duration::from_millis(100));
        self.samples_kept = kept.max(2);
        self
    }

    /// Marks the session cookie `Secure` (sent over HTTPS only): set it when the console is
    /// served behind TLS. Off by default, so the console works on `http://127.0.0.1`.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// A running process instance that has not moved for this long, with no timeout to
    /// come, is stuck (default five minutes).
    pub fn stuck_after(mut self, after: Duration) -> Self {
        self.stuck_after = after;
        self
    }
}

impl fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("enabled", &self.is_enabled())
            .field("base_path", &self.base_path)
            .field("live_status", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

/// The console's secret. Its `Debug` hides it; it is compared in constant time.
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    /// Whether `given` is the token, in time independent of where they differ.
    pub(crate) fn matches(&self, given: &str) -> bool {
        crate::auth::constant_time_eq(self.0.as_bytes(), given.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}
