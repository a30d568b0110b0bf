//! What the figures were measured on: the processor.

/// The machine the benchmark runs on.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical processors available to this process (`nproc`).
    pub cpus: usize,
    /// The processor model, from `/proc/cpuinfo` (`"unknown"` elsewhere).
    pub model: String,
}

impl Machine {
    /// This machine.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self { cpus, model }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nproc {}, cpu {}", self.cpus, self.model)
    }
}
