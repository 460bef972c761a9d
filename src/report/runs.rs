//! Run lookup and listing: which runs a database contains.

use serde::Serialize;
use sqlx::SqlitePool;

use super::ReportError;

/// One row of the `runs` table.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunInfo {
    pub id: i64,
    pub name: String,
    pub method: String,
    pub status: String,
    /// Effective configuration as JSON text.
    #[serde(skip)]
    pub config_json: String,
    pub seed_path: String,
    pub seed_sha256: String,
    pub test_path: Option<String>,
    pub test_sha256: Option<String>,
    pub stop_reason: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl RunInfo {
    /// Parses the stored configuration; `Null` when it is not valid JSON.
    pub fn config(&self) -> serde_json::Value {
        serde_json::from_str(&self.config_json).unwrap_or(serde_json::Value::Null)
    }
}

/// Builds a static `SELECT` of every [`RunInfo`] column with the given tail.
macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, method, status, config_json, seed_path, seed_sha256, test_path, ",
            "test_sha256, stop_reason, created_at, finished_at FROM runs ",
            $tail
        )
    };
}

/// Finds a run by name or, when `key` is a number, by id (a run named like a
/// number is found too when no id matches).
pub async fn find_run(pool: &SqlitePool, key: &str) -> Result<RunInfo, ReportError> {
    if let Ok(id) = key.parse::<i64>() {
        let by_id = sqlx::query_as::<_, RunInfo>(select_runs!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(|source| ReportError::Database {
                what: "look up the run",
                source,
            })?;
        if let Some(run) = by_id {
            return Ok(run);
        }
    }
    sqlx::query_as::<_, RunInfo>(select_runs!("WHERE name = ?"))
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(|source| ReportError::Database {
            what: "look up the run",
            source,
        })?
        .ok_or_else(|| ReportError::RunNotFound {
            key: key.to_string(),
        })
}

/// Returns every run, oldest first.
pub async fn all_runs(pool: &SqlitePool) -> Result<Vec<RunInfo>, ReportError> {
    sqlx::query_as::<_, RunInfo>(select_runs!("ORDER BY id"))
        .fetch_all(pool)
        .await
        .map_err(|source| ReportError::Database {
            what: "list the runs",
            source,
        })
}

/// Number of examples of a run by kind (`seed`, `test`, `generated`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExampleCounts {
    pub seed: i64,
    pub test: i64,
    pub generated: i64,
}

/// Counts a run's examples by kind.
pub async fn example_counts(pool: &SqlitePool, run_id: i64) -> Result<ExampleCounts, ReportError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, COUNT(*) FROM examples WHERE run_id = ? GROUP BY kind")
            .bind(run_id)
            .fetch_all(pool)
            .await
            .map_err(|source| ReportError::Database {
                what: "count the examples",
                source,
            })?;
    let mut counts = ExampleCounts::default();
    for (kind, count) in rows {
        match kind.as_str() {
            "seed" => counts.seed = count,
            "test" => counts.test = count,
            _ => counts.generated += count,
        }
    }
    Ok(counts)
}

/// One row of the `phases` table.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PhaseRow {
    pub iteration: i64,
    pub phase: String,
    pub status: String,
    pub seconds: f64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub summary_json: Option<String>,
}

/// Returns a run's phases by iteration, in the order an iteration runs them.
pub async fn phases(pool: &SqlitePool, run_id: i64) -> Result<Vec<PhaseRow>, ReportError> {
    sqlx::query_as::<_, PhaseRow>(
        "SELECT iteration, phase, status, seconds, started_at, finished_at, summary_json \
         FROM phases WHERE run_id = ? \
         ORDER BY iteration, CASE phase WHEN 'train' THEN 0 WHEN 'eval_seed' THEN 1 \
             WHEN 'eval_test' THEN 2 WHEN 'augment' THEN 3 ELSE 4 END, started_at, phase",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(|source| ReportError::Database {
        what: "read the phases",
        source,
    })
}
