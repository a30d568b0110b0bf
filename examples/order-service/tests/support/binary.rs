//! [`Binary`]: the real `order-service` binary as a child process, on a free port.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{required_env, Names, PATIENCE};

/// The `order-service` binary, running as a child process (killed if the test panics).
pub(crate) struct Binary {
    /// `http://127.0.0.1:port`.
    pub(crate) base: String,
    child: Child,
}

impl Binary {
    /// Starts the binary on the servers of the environment, in `names`' schema and read model,
    /// with `RUST_LOG=warn` and the extra variables `env`; returns once it listens (it prints
    /// `listening on ADDR` on stdout).
    pub(crate) async fn start(names: &Names, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_order-service"));
        command
            .env("DATABASE_URL", required_env("DATABASE_URL"))
            .env("ELASTICSEARCH_URL", required_env("ELASTICSEARCH_URL"))
            .env("ORDER_SERVICE_SCHEMA", &names.schema)
            .env("ORDER_SERVICE_INDEX", &names.index)
            .env("BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("a line") {
                if let Some(address) = line.strip_prefix("listening on ") {
                    return format!("http://{address}");
                }
            }
            panic!("the binary exited before listening");
        })
        .await
        .expect("the binary listens in time");
        Self { base, child }
    }

    /// Sends SIGTERM and waits for the binary to exit; it must exit 0.
    pub(crate) async fn terminate(mut self) {
        let pid = self.child.id().expect("a pid").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(killed.expect("kill runs").success());
        let exit = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("the binary exits in time")
            .expect("an exit status");
        assert!(exit.success(), "exit 0 after SIGTERM, not {exit}");
    }
}
