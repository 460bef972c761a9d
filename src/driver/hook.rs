//! Test hook: `LLM2LLM_TEST_ABORT_AT=<phase>:<iteration>` makes the process
//! exit abruptly inside that phase, after part of its work and before its
//! results are committed. Tests use it to check that a resume after a crash
//! at that point ends in the same state. Users have no reason to set it.

use crate::store::Phase;

/// Environment variable naming the abort point, e.g. `train:1`.
pub const ABORT_ENV: &str = "LLM2LLM_TEST_ABORT_AT";

/// Exit status of a process stopped by the hook.
pub const ABORT_EXIT_CODE: i32 = 86;

/// Phase and iteration at which the hook stops the process, read once from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AbortPoint(Option<(Phase, i64)>);

impl AbortPoint {
    /// Reads [`ABORT_ENV`]; an unset or malformed value disables the hook.
    pub fn from_env() -> Self {
        let Ok(value) = std::env::var(ABORT_ENV) else {
            return Self(None);
        };
        let parsed = value
            .split_once(':')
            .and_then(|(phase, iteration)| Some((Phase::parse(phase)?, iteration.parse().ok()?)));
        if parsed.is_none() {
            tracing::warn!("ignoring {ABORT_ENV}={value:?}: expected <phase>:<iteration>");
        }
        Self(parsed)
    }

    /// Exits the process at once when `(phase, iteration)` is the abort point.
    pub fn check(self, phase: Phase, iteration: i64) {
        if self.0 == Some((phase, iteration)) {
            eprintln!("{ABORT_ENV}: stopping inside {phase} of iteration {iteration}");
            std::process::exit(ABORT_EXIT_CODE);
        }
    }
}
