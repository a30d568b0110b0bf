//! [`Proxy`]: one Toxiproxy proxy, its toxics, and its deletion when the guard is dropped.

use serde_json::json;

use super::http::call;
use super::{Direction, Toxic, ToxiproxyError};

/// A proxy on the Toxiproxy server, deleted (with its toxics and connections) when dropped.
#[derive(Debug)]
pub struct Proxy {
    api: String,
    name: String,
    upstream: String,
    listen: String,
    deleted: bool,
}

impl Proxy {
    pub(super) fn new(api: String, name: &str, upstream: &str, listen: String) -> Self {
        Self {
            api,
            name: name.to_owned(),
            upstream: upstream.to_owned(),
            listen,
            deleted: false,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it forwards to (`host:port`).
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Where clients connect (`127.0.0.1:port`).
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.listen
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }

    /// Adds `toxic` as `name`, acting `direction`, on every connection (open ones included).
    pub fn add(
        &self,
        name: &str,
        direction: Direction,
        toxic: &Toxic,
    ) -> Result<(), ToxiproxyError> {
        let path = format!("/proxies/{}/toxics", self.name);
        call(&self.api, "POST", &path, Some(&toxic.body(name, direction)))?;
        Ok(())
    }

    /// Removes toxic `name`.
    pub fn remove(&self, name: &str) -> Result<(), ToxiproxyError> {
        let path = format!("/proxies/{}/toxics/{name}", self.name);
        call(&self.api, "DELETE", &path, None)?;
        Ok(())
    }

    /// Removes every toxic.
    pub fn clear(&self) -> Result<(), ToxiproxyError> {
        let path = format!("/proxies/{}/toxics", self.name);
        let (_, body) = call(&self.api, "GET", &path, None)?;
        let toxics: Vec<serde_json::Value> =
            serde_json::from_str(&body).map_err(|_| ToxiproxyError::Malformed {
                request: format!("GET {path}"),
                body: body.clone(),
            })?;
        for toxic in toxics {
            if let Some(name) = toxic["name"].as_str() {
                self.remove(name)?;
            }
        }
        Ok(())
    }

    /// Disables the proxy: open connections are closed, new ones refused.
    pub fn disable(&self) -> Result<(), ToxiproxyError> {
        self.set_enabled(false)
    }

    /// Enables it again.
    pub fn enable(&self) -> Result<(), ToxiproxyError> {
        self.set_enabled(true)
    }

    fn set_enabled(&self, enabled: bool) -> Result<(), ToxiproxyError> {
        let path = format!("/proxies/{}", self.name);
        call(
            &self.api,
            "POST",
            &path,
            Some(&json!({ "enabled": enabled })),
        )?;
        Ok(())
    }

    /// Deletes the proxy now (what dropping it does, with the error returned).
    pub fn delete(mut self) -> Result<(), ToxiproxyError> {
        self.deleted = true;
        self.delete_ref()
    }

    fn delete_ref(&self) -> Result<(), ToxiproxyError> {
        call(
            &self.api,
            "DELETE",
            &format!("/proxies/{}", self.name),
            None,
        )?;
        Ok(())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if let Err(e) = self.delete_ref() {
            eprintln!("could not delete toxiproxy proxy {}: {e}", self.name);
        }
    }
}
