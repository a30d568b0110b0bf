//! [`KafkaNode`]: a Kafka broker of a test's own, started, stopped and restarted with
//! `scripts/kafka.sh` in its own work directory, and always stopped (its directory removed)
//! when the guard is dropped, even on a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::script::{run, run_or_panic};

/// A single-node Kafka (KRaft) in its own work directory, on a free port.
#[derive(Debug)]
pub struct KafkaNode {
    workdir: PathBuf,
    bootstrap: String,
}

impl KafkaNode {
    /// Starts a fresh node in a new directory under `/var/tmp` (10-30 s); panics with the
    /// script's output when it does not come up.
    pub async fn start(prefix: &str) -> Self {
        let workdir = PathBuf::from(format!(
            "/var/tmp/{prefix}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let stdout = script(&workdir, "start", false).await;
        let bootstrap = stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("KAFKA_BOOTSTRAP_SERVERS="))
            .unwrap_or_else(|| panic!("kafka.sh start printed no bootstrap line:\n{stdout}"))
            .to_owned();
        Self { workdir, bootstrap }
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Stops the node (SIGTERM, a controlled shutdown; waits for the process to end).
    pub async fn stop(&self) {
        script(&self.workdir, "stop", false).await;
    }

    /// Starts the node again with its data, cluster id and ports (`KAFKA_KEEP_DATA=1`).
    pub async fn restart(&self) {
        script(&self.workdir, "start", true).await;
    }
}

async fn script(workdir: &Path, action: &'static str, keep_data: bool) -> String {
    let what = format!("scripts/kafka.sh {action} in {}", workdir.display());
    run_or_panic(command(workdir, action, keep_data), what).await
}

fn command(workdir: &Path, action: &str, keep_data: bool) -> Command {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let mut command = Command::new(script);
    command.arg(action);
    command.env("KAFKA_WORKDIR", workdir);
    command.env_remove("KAFKA_PORT");
    command.env_remove("KAFKA_KEEP_DATA");
    if keep_data {
        command.env("KAFKA_KEEP_DATA", "1");
    }
    command
}

impl Drop for KafkaNode {
    fn drop(&mut self) {
        // Stopping a stopped node is a no-op for the script.
        match run(command(&self.workdir, "stop", false)) {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&self.workdir);
            }
            Err(failure) => eprintln!(
                "could not stop the kafka node in {}: {failure}",
                self.workdir.display()
            ),
        }
    }
}
