//! Tables, charts and exports of recorded runs.
//!
//! Everything here reads the run database with its own queries. The only
//! write is `store::open` applying pending migrations. [`iteration_rows`] is the per-iteration summary that
//! `report` and `compare` share; [`render`] and [`chart`] turn it into
//! tables and accuracy charts.

pub mod chart;
pub mod cli;
pub mod compare;
pub mod export;
pub mod iterations;
pub mod render;
pub mod runs;
pub mod table;

use std::path::PathBuf;

pub use iterations::{IterationRow, iteration_rows};
pub use render::Format;
pub use runs::{RunInfo, find_run};

/// Errors of reading and presenting recorded runs.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("failed to {what} in the run database")]
    Database {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("no run is named or numbered `{key}`; `llm2llm list` shows the recorded runs")]
    RunNotFound { key: String },
    #[error("unsupported chart file {}: use a .svg or .png extension", path.display())]
    ChartFormat { path: PathBuf },
    #[error("nothing to draw in {}: no iteration has an accuracy yet", path.display())]
    NothingToChart { path: PathBuf },
    #[error("failed to draw the chart {}: {message}", path.display())]
    Chart { path: PathBuf, message: String },
}
