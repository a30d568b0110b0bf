//! [`SecretUrl`]: a server URL that never prints its password.

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// A URL from the command line or the environment that may carry a password: it derefs to the
/// full text for connecting, and its `Debug` and `Display` mask the password
/// ([`cqrs_core::redact_url`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl FromStr for SecretUrl {
    type Err = Infallible;

    fn from_str(url: &str) -> Result<Self, Infallible> {
        Ok(Self(url.to_owned()))
    }
}

impl Deref for SecretUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({:?})", cqrs_core::redact_url(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&cqrs_core::redact_url(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::SecretUrl;

    #[test]
    fn a_secret_url_prints_without_its_password_and_connects_with_it() {
        let url: SecretUrl = "postgres://app:s3cret@db/app".parse().expect("any text");
        assert_eq!(&*url, "postgres://app:s3cret@db/app");
        assert_eq!(url.to_string(), "postgres://app:****@db/app");
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
