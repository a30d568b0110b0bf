//! [`ScenarioLog`]: `[chaos scenario elapsed] what` lines on stderr, so the CI log shows what a
//! scenario did (toxics, errors, retries, recovery times) and when.

use tokio::time::Instant;

use super::soaking;

/// A scenario's log, timed from its start.
#[derive(Debug)]
pub struct ScenarioLog {
    scenario: &'static str,
    started: Instant,
}

impl ScenarioLog {
    /// Starts the log of `scenario`, saying which `faults` it injects.
    pub fn new(scenario: &'static str, faults: &str) -> Self {
        let log = Self {
            scenario,
            started: Instant::now(),
        };
        log.say(&format!(
            "begins: {faults}{}",
            if soaking() { " (soak mode)" } else { "" }
        ));
        log
    }

    /// Prints `what`.
    pub fn say(&self, what: &str) {
        eprintln!(
            "[chaos {} {:>7.2?}] {what}",
            self.scenario,
            self.started.elapsed()
        );
    }
}
