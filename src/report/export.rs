//! Training sets with provenance, as `llm2llm export` writes them.

use serde::Serialize;
use sqlx::SqlitePool;

use super::ReportError;

/// One example of a training set with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ExportRow {
    pub question: String,
    pub answer: String,
    /// `seed` or `generated`.
    pub kind: String,
    pub id: i64,
    /// 1-based line in the seed file, for seed examples.
    pub source_line: Option<i64>,
    /// The seed example a generated example came from.
    pub parent_id: Option<i64>,
    /// The iteration that generated the example.
    pub iteration: Option<i64>,
    /// Generation method: `llm2llm`, `eda` or `auggpt`.
    pub method: Option<String>,
    /// The teacher call (journal row) that produced it, if any.
    pub teacher_call_id: Option<i64>,
}

/// Returns the training set of iteration `iteration`: every seed example in
/// file order, then the examples generated in earlier iterations by
/// (iteration, position). This is the order the loop trains on.
pub async fn training_set(
    pool: &SqlitePool,
    run_id: i64,
    iteration: i64,
) -> Result<Vec<ExportRow>, ReportError> {
    sqlx::query_as::<_, ExportRow>(
        "SELECT question, answer, kind, id, source_line, parent_id, iteration, method, teacher_call_id \
         FROM examples \
         WHERE run_id = ?1 AND (kind = 'seed' OR (kind = 'generated' AND iteration < ?2)) \
         ORDER BY kind = 'generated', iteration, position, source_line, id",
    )
    .bind(run_id)
    .bind(iteration)
    .fetch_all(pool)
    .await
    .map_err(|source| ReportError::Database { what: "read the training set", source })
}

/// Returns the last iteration recorded for a run (in `phases` or as the
/// iteration of a generated example), or `None` for a run with neither.
pub async fn last_iteration(pool: &SqlitePool, run_id: i64) -> Result<Option<i64>, ReportError> {
    sqlx::query_scalar(
        "SELECT MAX(iteration) FROM (SELECT iteration FROM phases WHERE run_id = ?1 \
         UNION ALL SELECT iteration FROM examples WHERE run_id = ?1 AND kind = 'generated')",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await
    .map_err(|source| ReportError::Database {
        what: "find the last iteration",
        source,
    })
}
