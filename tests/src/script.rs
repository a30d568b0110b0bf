//! Running the project's own scripts (`scripts/*.sh`) from the test support that starts,
//! stops and restarts servers of a test's own.

use std::process::Command;

/// Runs `command` to its end: its stdout, or what went wrong (the status and both outputs).
pub(crate) fn run(mut command: Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs `command` off the runtime's threads: its stdout; panics saying `what` failed, with the
/// script's output.
pub(crate) async fn run_or_panic(command: Command, what: String) -> String {
    match tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("the script's thread")
    {
        Ok(stdout) => stdout,
        Err(failure) => panic!("{what} failed: {failure}"),
    }
}
