//! Database operations only baselines need: their settings column and the
//! generated-example count of a run to match. Everything else goes through
//! `crate::store`.

use sqlx::SqliteExecutor;

/// Stores a baseline run's settings (JSON) in `runs.baseline_json`.
pub async fn set_baseline_json(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    settings_json: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE runs SET baseline_json = ? WHERE id = ?")
        .bind(settings_json)
        .bind(run_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Returns a run's `runs.baseline_json`, NULL for LLM2LLM runs.
pub async fn baseline_json(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT baseline_json FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_one(executor)
        .await
}

/// Counts the generated examples of a run over all its iterations.
pub async fn count_generated(executor: impl SqliteExecutor<'_>, run_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM examples WHERE run_id = ? AND kind = 'generated'")
        .bind(run_id)
        .fetch_one(executor)
        .await
}
