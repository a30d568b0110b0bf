//! [`Config`]: where the service finds its servers and how it behaves, from the environment.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The service's settings. [`Config::from_env`] reads them; tests build one with
/// [`Config::new`] and the `with_*` setters.
///
/// `Debug` masks the password of both URLs: a config is logged at start.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The PostgreSQL URL (`DATABASE_URL`).
    pub database_url: String,
    /// The search node's URL (`ELASTICSEARCH_URL`).
    pub elasticsearch_url: String,
    /// The PostgreSQL schema of the events, checkpoints and process tables
    /// (`ORDER_SERVICE_SCHEMA`, default `order_service`).
    pub schema: String,
    /// The read model's name on the search node (`ORDER_SERVICE_INDEX`, default
    /// `order-service-orders`).
    pub index: String,
    /// Where the binary listens (`BIND`, default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// How long a query with `min_position` waits for the read model at most
    /// (`ORDER_SERVICE_READ_WAIT_MS`, default 2000): then it answers 504.
    pub read_wait: Duration,
    /// Readiness fails for a projection more than this many events behind
    /// (`ORDER_SERVICE_MAX_LAG_EVENTS`, default 10000).
    pub max_lag_events: u64,
    /// Readiness fails for a projection whose oldest unapplied event is older than this
    /// (`ORDER_SERVICE_MAX_LAG_MS`, default 30000).
    pub max_lag: Duration,
    /// How long a command may wait for a database connection, and a query or a health check
    /// for the search node's or the database's answer (`ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS`,
    /// default 2000): a server that is down or hangs answers 503 after this, not after the
    /// clients' own 30 s.
    pub dependency_timeout: Duration,
    /// How many attempts a command gets when other writers keep getting there first
    /// (`ORDER_SERVICE_COMMAND_ATTEMPTS`, default 10): past them it answers 409.
    pub command_attempts: u32,
    /// How long a shutdown waits for the requests in flight (`ORDER_SERVICE_SHUTDOWN_GRACE_MS`,
    /// default 10000): past it the service stops waiting for them and stops the workers all
    /// the same, saving their checkpoints and releasing their leases before an orchestrator's
    /// kill.
    pub shutdown_grace: Duration,
    /// How long a shutdown keeps serving, readiness answering 503 `draining`, before it stops
    /// accepting connections (`ORDER_SERVICE_DRAIN_MS`, default 0): the time a load balancer
    /// takes to stop sending new requests once the instance is told to stop (on Kubernetes the
    /// endpoint's removal spreads while the pod gets SIGTERM; about 5000 is usual). Without it
    /// the connections that still come in that time are refused.
    pub drain: Duration,
    /// The web console's token (`ORDER_SERVICE_CONSOLE_TOKEN`): unset, the console is off
    /// and `/console` answers 404; set, `/console` serves it to whoever gives the token
    /// (bearer or login form). Never shown by `Debug`.
    pub console_token: Option<String>,
}

/// The default schema.
pub const DEFAULT_SCHEMA: &str = "order_service";
/// The default read model name.
pub const DEFAULT_INDEX: &str = "order-service-orders";
/// The default listening address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Why the environment does not make a [`Config`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable does not hold what it should (the value is not repeated: it may be a
    /// secret).
    #[error("{name} is invalid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
}

impl Config {
    /// A config for the two servers, every other setting at its default.
    pub fn new(database_url: impl Into<String>, elasticsearch_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            elasticsearch_url: elasticsearch_url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            index: DEFAULT_INDEX.to_owned(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            read_wait: Duration::from_secs(2),
            max_lag_events: 10_000,
            max_lag: Duration::from_secs(30),
            dependency_timeout: Duration::from_secs(2),
            command_attempts: 10,
            shutdown_grace: Duration::from_secs(10),
            drain: Duration::ZERO,
            console_token: None,
        }
    }

    /// Reads the config from the process environment (see each field for its variable).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] without `DATABASE_URL` or `ELASTICSEARCH_URL`,
    /// [`ConfigError::Invalid`] for a value that does not parse.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the config through `lookup` (a variable's value by name; empty counts as unset).
    ///
    /// ```
    /// use order_service::Config;
    ///
    /// let config = Config::from_lookup(|name| match name {
    ///     "DATABASE_URL" => Some("postgres://app:secret@db/app".into()),
    ///     "ELASTICSEARCH_URL" => Some("http://search:9200".into()),
    ///     "BIND" => Some("0.0.0.0:9000".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(config.bind.port(), 9000);
    /// assert!(!format!("{config:?}").contains("secret"));
    /// # Ok::<(), order_service::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database = get("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        let search = get("ELASTICSEARCH_URL").ok_or(ConfigError::Missing("ELASTICSEARCH_URL"))?;
        let mut config = Self::new(database, search);
        if let Some(schema) = get("ORDER_SERVICE_SCHEMA") {
            config.schema = schema;
        }
        if let Some(index) = get("ORDER_SERVICE_INDEX") {
            config.index = index;
        }
        if let Some(bind) = get("BIND") {
            config.bind = bind.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "BIND",
                expected: "an address and port, like 127.0.0.1:8080",
            })?;
        }
        let millis = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|v| v.trim().parse::<u64>().map(Duration::from_millis))
                .transpose()
                .map_err(|_| ConfigError::Invalid {
                    name,
                    expected: "a number of milliseconds",
                })
        };
        if let Some(wait) = millis("ORDER_SERVICE_READ_WAIT_MS")? {
            config.read_wait = wait;
        }
        if let Some(lag) = millis("ORDER_SERVICE_MAX_LAG_MS")? {
            config.max_lag = lag;
        }
        if let Some(timeout) = millis("ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS")? {
            config.dependency_timeout = timeout;
        }
        if let Some(grace) = millis("ORDER_SERVICE_SHUTDOWN_GRACE_MS")? {
            config.shutdown_grace = grace;
        }
        if let Some(drain) = millis("ORDER_SERVICE_DRAIN_MS")? {
            config.drain = drain;
        }
        if let Some(events) = get("ORDER_SERVICE_MAX_LAG_EVENTS") {
            config.max_lag_events = events.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "ORDER_SERVICE_MAX_LAG_EVENTS",
                expected: "a number of events",
            })?;
        }
        if let Some(attempts) = get("ORDER_SERVICE_COMMAND_ATTEMPTS") {
            config.command_attempts =
                attempts.trim().parse().map_err(|_| ConfigError::Invalid {
                    name: "ORDER_SERVICE_COMMAND_ATTEMPTS",
                    expected: "a number of attempts",
                })?;
        }
        config.console_token = get("ORDER_SERVICE_CONSOLE_TOKEN");
        config.validate()?;
        Ok(config)
    }

    /// Checks what no setting may hold, however the config was made (from the environment,
    /// or in code through the builders and the public fields): [`Service::start`](crate::Service::start)
    /// refuses a config that fails it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting by its variable: a dependency timeout of
    /// zero (every command and query would fail at once).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dependency_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                name: "ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS",
                expected: "a positive number of milliseconds",
            });
        }
        Ok(())
    }

    /// Keeps the events in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Keeps the read model under `index`.
    #[must_use]
    pub fn with_index(mut self, index: impl Into<String>) -> Self {
        self.index = index.into();
        self
    }

    /// Waits at most `wait` for the read model on a query with `min_position`.
    #[must_use]
    pub fn with_read_wait(mut self, wait: Duration) -> Self {
        self.read_wait = wait;
        self
    }

    /// Keeps serving for `drain`, not ready, when told to shut down (see [`Config::drain`]).
    #[must_use]
    pub fn with_drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Waits at most `grace` for the requests in flight when shutting down.
    #[must_use]
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Gives a command at most `attempts` attempts against concurrent writers.
    #[must_use]
    pub fn with_command_attempts(mut self, attempts: u32) -> Self {
        self.command_attempts = attempts;
        self
    }

    /// Serves the web console at `/console` behind `token`.
    #[must_use]
    pub fn with_console_token(mut self, token: impl Into<String>) -> Self {
        self.console_token = Some(token.into());
        self
    }

    /// Gives up on a dependency after `timeout`.
    #[must_use]
    pub fn with_dependency_timeout(mut self, timeout: Duration) -> Self {
        self.dependency_timeout = timeout;
        self
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &cqrs_core::redact_url(&self.database_url))
            .field(
                "elasticsearch_url",
                &cqrs_core::redact_url(&self.elasticsearch_url),
            )
            .field("schema", &self.schema)
            .field("index", &self.index)
            .field("bind", &self.bind)
            .field("read_wait", &self.read_wait)
            .field("max_lag_events", &self.max_lag_events)
            .field("max_lag", &self.max_lag)
            .field("dependency_timeout", &self.dependency_timeout)
            .field("command_attempts", &self.command_attempts)
            .field(
                "console",
                &if self.console_token.is_some() {
                    "enabled"
                } else {
                    "disabled"
                },
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            (pairs.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const SERVERS: [(&str, &str); 2] = [
        ("DATABASE_URL", "postgres://app:s3cret@db:5432/app"),
        ("ELASTICSEARCH_URL", "http://elastic:t0psecret@search:9200"),
    ];

    #[test]
    fn defaults_apply_when_only_the_servers_are_named() {
        let config = Config::from_lookup(env(&SERVERS)).unwrap();
        assert_eq!(config.schema, DEFAULT_SCHEMA);
        assert_eq!(config.index, DEFAULT_INDEX);
        assert_eq!(config.bind.to_string(), DEFAULT_BIND);
        assert_eq!(config.read_wait, Duration::from_secs(2));
    }

    #[test]
    fn the_console_is_off_unless_its_token_is_set_and_debug_never_shows_the_token() {
        assert_eq!(
            Config::from_lookup(env(&SERVERS)).unwrap().console_token,
            None
        );
        let mut pairs = SERVERS.to_vec();
        pairs.push(("ORDER_SERVICE_CONSOLE_TOKEN", "c0nsole-secret"));
        let config = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(config.console_token.as_deref(), Some("c0nsole-secret"));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("c0nsole-secret") && shown.contains("enabled"),
            "{shown}"
        );
    }

    #[test]
    fn debug_shows_neither_password() {
        let shown = format!("{:?}", Config::from_lookup(env(&SERVERS)).unwrap());
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0psecret"),
            "{shown}"
        );
        assert!(shown.contains("db:5432"), "{shown}");
    }

    #[test]
    fn a_missing_server_or_a_malformed_value_is_named_without_its_value() {
        let missing = Config::from_lookup(env(&SERVERS[..1])).unwrap_err();
        assert_eq!(missing.to_string(), "ELASTICSEARCH_URL is not set");
        let mut pairs = SERVERS.to_vec();
        pairs.push(("ORDER_SERVICE_READ_WAIT_MS", "soon-ish"));
        let invalid = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(
            invalid,
            ConfigError::Invalid {
                name: "ORDER_SERVICE_READ_WAIT_MS",
                ..
            }
        ));
        assert!(!invalid.to_string().contains("soon-ish"));
    }

    #[test]
    fn a_zero_dependency_timeout_is_refused() {
        // Every connection wait would time out at once: the service could not even start.
        let mut pairs = SERVERS.to_vec();
        pairs.push(("ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS", "0"));
        let invalid = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(
            invalid,
            ConfigError::Invalid {
                name: "ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS",
                ..
            }
        ));
    }

    #[test]
    fn every_setting_is_read_from_its_variable() {
        let mut pairs = SERVERS.to_vec();
        pairs.extend([
            ("ORDER_SERVICE_SCHEMA", "shop"),
            ("ORDER_SERVICE_INDEX", "shop-orders"),
            ("BIND", "0.0.0.0:9000"),
            ("ORDER_SERVICE_READ_WAIT_MS", "500"),
            ("ORDER_SERVICE_MAX_LAG_EVENTS", "7"),
            ("ORDER_SERVICE_MAX_LAG_MS", "1500"),
            ("ORDER_SERVICE_DEPENDENCY_TIMEOUT_MS", "250"),
            ("ORDER_SERVICE_SHUTDOWN_GRACE_MS", "3000"),
            ("ORDER_SERVICE_DRAIN_MS", "5000"),
        ]);
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(
            (c.schema.as_str(), c.index.as_str(), c.bind.port()),
            ("shop", "shop-orders", 9000)
        );
        assert_eq!(c.read_wait, Duration::from_millis(500));
        assert_eq!(
            (c.max_lag_events, c.max_lag),
            (7, Duration::from_millis(1500))
        );
        assert_eq!(c.dependency_timeout, Duration::from_millis(250));
        assert_eq!(
            (c.shutdown_grace, c.drain),
            (Duration::from_secs(3), Duration::from_secs(5))
        );
    }
}
