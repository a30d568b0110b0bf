//! Where the brokers are and how to log in: [`KafkaConfig`].

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;

use crate::{KafkaError, Result};

/// The variable [`KafkaConfig::from_env`] reads: a comma-separated list of `host:port`.
pub const BOOTSTRAP_VARIABLE: &str = "KAFKA_BOOTSTRAP_SERVERS";
/// Read by [`KafkaConfig::from_env`] with the two below: `PLAIN` (SCRAM needs a client built
/// with TLS support, which this crate does not enable yet).
const SASL_MECHANISM_VARIABLE: &str = "KAFKA_SASL_MECHANISM";
const SASL_USERNAME_VARIABLE: &str = "KAFKA_SASL_USERNAME";
const SASL_PASSWORD_VARIABLE: &str = "KAFKA_SASL_PASSWORD";

/// How to reach a Kafka cluster: the bootstrap servers, the client id, SASL credentials if
/// any, and extra librdkafka settings.
///
/// Its `Debug` output shows the password as `****`, and hides the value of any extra setting
/// whose name mentions a password, secret or key.
///
/// ```
/// # use cqrs_kafka::{KafkaConfig, Sasl};
/// let config = KafkaConfig::new("127.0.0.1:9092,127.0.0.1:9093")?
///     .with_client_id("orders")
///     .with_sasl(Sasl::plain("orders", "s3cret"));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), cqrs_kafka::KafkaError>(())
/// ```
#[derive(Clone)]
pub struct KafkaConfig {
    bootstrap_servers: String,
    client_id: String,
    group_prefix: String,
    sasl: Option<Sasl>,
    settings: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A configuration for the brokers in `bootstrap_servers`, a comma-separated list of
    /// `host:port` (spaces around the commas are dropped). Refused with
    /// [`KafkaError::Config`] when the list is empty or an entry lacks a host or a valid port.
    pub fn new(bootstrap_servers: &str) -> Result<Self> {
        Ok(Self {
            bootstrap_servers: parse_bootstrap(BOOTSTRAP_VARIABLE, bootstrap_servers)?,
            client_id: "cqrs-kafka".to_owned(),
            group_prefix: String::new(),
            sasl: None,
            settings: BTreeMap::new(),
        })
    }

    /// The configuration in the environment: [`BOOTSTRAP_VARIABLE`]
    /// (`KAFKA_BOOTSTRAP_SERVERS`), and SASL credentials when `KAFKA_SASL_USERNAME` is set
    /// (with `KAFKA_SASL_PASSWORD`, and `KAFKA_SASL_MECHANISM`, default `PLAIN`).
    pub fn from_env() -> Result<Self> {
        let servers = std::env::var(BOOTSTRAP_VARIABLE).map_err(|_| KafkaError::Config {
            setting: BOOTSTRAP_VARIABLE.to_owned(),
            problem: "not set: point it at a broker, e.g. 127.0.0.1:9092 (scripts/kafka.sh \
                      start prints a KAFKA_BOOTSTRAP_SERVERS=... line)"
                .to_owned(),
        })?;
        let mut config = Self::new(&servers)?;
        if let Ok(username) = std::env::var(SASL_USERNAME_VARIABLE) {
            let password =
                std::env::var(SASL_PASSWORD_VARIABLE).map_err(|_| KafkaError::Config {
                    setting: SASL_PASSWORD_VARIABLE.to_owned(),
                    problem: format!("not set, while {SASL_USERNAME_VARIABLE} is"),
                })?;
            let mechanism = match std::env::var(SASL_MECHANISM_VARIABLE) {
                Ok(name) => SaslMechanism::parse(&name)?,
                Err(_) => SaslMechanism::Plain,
            };
            config = config.with_sasl(Sasl::new(mechanism, username, password));
        }
        Ok(config)
    }

    /// Prefixes every consumer group id (`staging.` makes consumer `billing` join the group
    /// `staging.billing`): environments or services sharing one cluster then never share a
    /// group, and so never split each other's partitions. Only the group id the brokers see:
    /// the consumer's name still keys its parked messages and the ids of the commands it
    /// derives, so adding a prefix to a running service (a new group, which reads its topics
    /// again from the start) runs no message's command twice.
    ///
    /// ```
    /// let config = cqrs_kafka::KafkaConfig::new("127.0.0.1:9092")?.with_group_prefix("staging.");
    /// assert_eq!(config.group_id("billing"), "staging.billing");
    /// # Ok::<(), cqrs_kafka::KafkaError>(())
    /// ```
    #[must_use]
    pub fn with_group_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.group_prefix = prefix.into();
        self
    }

    /// The group id the brokers see for a consumer named `name`: the group prefix, then the
    /// name.
    pub fn group_id(&self, name: &str) -> String {
        format!("{}{name}", self.group_prefix)
    }

    /// The client id the brokers see in their logs and quotas (default `cqrs-kafka`).
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Logs in with SASL over a plaintext connection (`security.protocol=SASL_PLAINTEXT`).
    /// TLS needs the client built with TLS support, which this crate does not enable yet.
    #[must_use]
    pub fn with_sasl(mut self, sasl: Sasl) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// An extra librdkafka setting (see librdkafka's `CONFIGURATION.md`), set on every client
    /// made from this configuration before the crate's own settings, which win.
    #[must_use]
    pub fn with_setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// The bootstrap servers, as normalised by [`new`](Self::new).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The librdkafka configuration every client starts from. It holds the password in clear:
    /// it never leaves the crate (rdkafka's own `Debug` of it redacts, but its values are
    /// reachable).
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.settings {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        if let Some(sasl) = &self.sasl {
            config
                .set("security.protocol", "SASL_PLAINTEXT")
                .set("sasl.mechanisms", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        config
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: BTreeMap<&str, &str> = self
            .settings
            .iter()
            .map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                let secret = [
                    "password",
                    "secret",
                    "key",
                    "token",
                    "jaas",
                    "oauthbearer",
                    "pem",
                ]
                .iter()
                .any(|word| lower.contains(word));
                (key.as_str(), if secret { "****" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("group_prefix", &self.group_prefix)
            .field("sasl", &self.sasl)
            .field("settings", &settings)
            .finish()
    }
}

/// SASL credentials. Its `Debug` output shows the password as `****`.
#[derive(Clone)]
pub struct Sasl {
    mechanism: SaslMechanism,
    username: String,
    password: String,
}

impl Sasl {
    /// Credentials for `mechanism`.
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: password.into(),
        }
    }

    /// `PLAIN` credentials.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::new(SaslMechanism::Plain, username, password)
    }

    /// The mechanism.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"****")
            .finish()
    }
}

/// A SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`: needs a client built with TLS support, which this crate does not
    /// enable yet (creating a client with it fails).
    ScramSha256,
    /// `SCRAM-SHA-512`: as [`ScramSha256`](Self::ScramSha256).
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka uses (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (case-insensitive), if this build can log in with it: only
    /// `PLAIN`. librdkafka offers SCRAM only when built with OpenSSL, which this crate does not
    /// enable yet; a SCRAM name is refused here, as a client given SCRAM credentials fails to
    /// be created.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            scram @ ("SCRAM-SHA-256" | "SCRAM-SHA-512") => Err(KafkaError::Config {
                setting: SASL_MECHANISM_VARIABLE.to_owned(),
                problem: format!(
                    "{scram} needs a client built with TLS support, which this crate does not \
                     enable yet: use PLAIN"
                ),
            }),
            _ => Err(KafkaError::Config {
                setting: SASL_MECHANISM_VARIABLE.to_owned(),
                problem: format!("unknown mechanism {name:?}: use PLAIN"),
            }),
        }
    }
}

/// Checks a `host:port,host:port` list and returns it without blanks.
fn parse_bootstrap(setting: &str, list: &str) -> Result<String> {
    let problem = |problem: String| KafkaError::Config {
        setting: setting.to_owned(),
        problem,
    };
    // Checked first, so no other message echoes the list with what precedes the `@`.
    if let Some(entry) = list.split(',').map(str::trim).find(|e| e.contains('@')) {
        let after = entry.rsplit_once('@').map_or("", |(_, host)| host);
        return Err(problem(format!(
            "the entry for {after:?} holds credentials before an '@': write host:port, and give \
             credentials with the SASL settings"
        )));
    }
    let mut servers = Vec::new();
    for entry in list.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(problem(format!(
                "{list:?} has an empty entry: write host:port[,host:port...], e.g. 127.0.0.1:9092"
            )));
        }
        if entry.contains("://") {
            return Err(problem(format!(
                "{entry:?} has a scheme: write host:port, e.g. 127.0.0.1:9092"
            )));
        }
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(problem(format!(
                "{entry:?} has no port: write host:port, e.g. 127.0.0.1:9092"
            )));
        };
        let host_ok = !host.is_empty() && !host.contains(char::is_whitespace);
        if !host_ok {
            return Err(problem(format!("{entry:?} has no host")));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(problem(format!(
                    "{entry:?} has an invalid port {port:?}: use 1-65535"
                )))
            }
        }
        servers.push(entry);
    }
    Ok(servers.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_list_is_normalised_and_checked() {
        let ok = KafkaConfig::new(" 127.0.0.1:9092 , [::1]:9093,broker-1:19092").map(|c| {
            let servers = c.bootstrap_servers().to_owned();
            servers
        });
        assert_eq!(
            ok.ok().as_deref(),
            Some("127.0.0.1:9092,[::1]:9093,broker-1:19092")
        );
        for bad in [
            "",
            " ",
            "a:1,",
            "localhost",
            ":9092",
            "h:0",
            "h:99999",
            "h:x",
            "PLAINTEXT://h:1",
        ] {
            assert!(
                matches!(KafkaConfig::new(bad), Err(KafkaError::Config { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn a_bootstrap_list_with_credentials_is_refused_without_showing_them() {
        for bad in [
            "svc:s3cret@b:9092",
            "kafka://svc:s3cret@b:9092",
            ",svc:s3cret@b:9092",
            "a:1,svc:s3cret@b:9092,",
        ] {
            let Err(error) = KafkaConfig::new(bad) else {
                panic!("{bad:?} was accepted")
            };
            let shown = error.to_string();
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("credentials"), "{shown}");
        }
    }

    #[test]
    fn the_client_config_carries_the_credentials_and_the_debug_output_does_not() {
        let config = KafkaConfig::new("h:1")
            .map(|c| {
                c.with_sasl(Sasl::new(SaslMechanism::ScramSha512, "svc", "hunter2"))
                    .with_setting("ssl.key.password", "k3y")
                    .with_setting("sasl.oauthbearer.config", "principal=svc secret=0auth")
                    .with_setting("ssl.certificate.pem", "-----BEGIN PRIVATE KEY----- p3m")
                    .with_setting("linger.ms", "7")
            })
            .ok();
        let Some(config) = config else {
            panic!("a valid list was refused")
        };
        let client = config.client_config();
        assert_eq!(client.get("sasl.password"), Some("hunter2"));
        assert_eq!(client.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(client.get("security.protocol"), Some("SASL_PLAINTEXT"));
        let debug = format!("{config:?}");
        assert!(
            ["hunter2", "k3y", "0auth", "p3m"]
                .iter()
                .all(|secret| !debug.contains(secret)),
            "{debug}"
        );
        assert!(
            debug.contains("svc") && debug.contains("linger.ms"),
            "{debug}"
        );
    }

    #[test]
    fn a_setting_the_client_refuses_is_named_without_its_value() {
        // `ssl.key.password` is refused by a client built without TLS; a mistyped key is
        // refused by every client. librdkafka's error carries the value as it was given.
        for (key, value) in [
            ("ssl.key.password", "k3y-v4lue"),
            ("sasl.pasword", "s3cret-v4lue"),
            ("compression.codec", "s3cret-v4lue"),
        ] {
            let config = KafkaConfig::new("h:1").map(|c| c.with_setting(key, value));
            let Ok(config) = config else {
                panic!("a valid list was refused")
            };
            let Err(error) = crate::KafkaProducer::new(&config) else {
                panic!("{key} was accepted")
            };
            let (shown, debug) = (error.to_string(), format!("{error:?}"));
            assert!(!shown.contains(value), "{shown}");
            assert!(!debug.contains(value), "{debug}");
            assert!(
                matches!(&error, KafkaError::Config { setting, .. } if setting == key),
                "{debug}"
            );
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn scram_is_refused_by_name_as_this_build_cannot_log_in_with_it() {
        // librdkafka offers SCRAM only when built with OpenSSL, which this crate does not
        // enable: a client with SCRAM credentials failed only when it was created.
        for name in ["SCRAM-SHA-256", "scram-sha-512"] {
            let Err(error) = SaslMechanism::parse(name) else {
                panic!("{name} was accepted")
            };
            let shown = error.to_string();
            assert!(shown.contains("PLAIN") && shown.contains("TLS"), "{shown}");
        }
        assert!(matches!(
            SaslMechanism::parse(" plain "),
            Ok(SaslMechanism::Plain)
        ));
    }
}
