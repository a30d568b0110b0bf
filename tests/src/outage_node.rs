//! [`OutageNode`]: a search node of a test's own, started, stopped and restarted with
//! `scripts/opensearch.sh`, and always stopped when the guard is dropped (even on a panic).

use std::path::PathBuf;
use std::process::Command;

use crate::script::{run, run_or_panic};

/// A single-node OpenSearch in its own work directory, on its own port.
#[derive(Debug)]
pub struct OutageNode {
    workdir: PathBuf,
    port: u16,
}

impl OutageNode {
    /// Starts a node with fresh data in `workdir` on `port` (about 6 s); panics with the
    /// script's output when it does not come up.
    pub async fn start(workdir: impl Into<PathBuf>, port: u16) -> Self {
        let node = Self {
            workdir: workdir.into(),
            port,
        };
        node.script("start", false).await;
        node
    }

    /// The node's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the node (SIGTERM, waiting for the process to end).
    pub async fn stop(&self) {
        self.script("stop", false).await;
    }

    /// Starts the node again on its old data (`OPENSEARCH_KEEP_DATA=1`).
    pub async fn restart(&self) {
        self.script("start", true).await;
    }

    async fn script(&self, action: &'static str, keep_data: bool) {
        let what = format!("scripts/opensearch.sh {action} on port {}", self.port);
        run_or_panic(self.command(action, keep_data), what).await;
    }

    fn command(&self, action: &str, keep_data: bool) -> Command {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/opensearch.sh");
        let mut command = Command::new(script);
        command.arg(action);
        if action == "start" {
            command.arg(self.port.to_string());
        }
        command.env("OPENSEARCH_WORKDIR", &self.workdir);
        if std::env::var_os("OPENSEARCH_JAVA_OPTS").is_none() {
            // A small heap and the client compiler only: the node holds one tiny index, and
            // it starts about 40% sooner on a busy machine.
            command.env(
                "OPENSEARCH_JAVA_OPTS",
                "-Xms512m -Xmx512m -XX:TieredStopAtLevel=1",
            );
        }
        command.env_remove("OPENSEARCH_KEEP_DATA");
        if keep_data {
            command.env("OPENSEARCH_KEEP_DATA", "1");
        }
        command
    }
}

impl Drop for OutageNode {
    fn drop(&mut self) {
        // Stopping an already stopped node is a no-op for the script.
        if let Err(failure) = run(self.command("stop", false)) {
            eprintln!(
                "could not stop the outage node on port {}: {failure}",
                self.port
            );
        }
    }
}
