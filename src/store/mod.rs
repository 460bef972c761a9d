//! The run database: SQLite through sqlx, schema in `migrations/`.
//!
//! One async function per operation, each taking an executor so it can run
//! inside a transaction.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqliteExecutor, SqlitePool};

/// Opens (creating if missing) the database at `path` in WAL mode and
/// applies pending migrations.
pub async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create the folder {}", parent.display()))?;
    }
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("failed to open the run database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .with_context(|| format!("failed to migrate the run database {}", path.display()))?;
    Ok(pool)
}

/// The phases of one iteration, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Train,
    EvalSeed,
    EvalTest,
    Augment,
}

impl Phase {
    /// Every phase in run order.
    pub const ALL: [Phase; 4] = [Phase::Train, Phase::EvalSeed, Phase::EvalTest, Phase::Augment];

    /// Returns the name stored in `phases.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Train => "train",
            Phase::EvalSeed => "eval_seed",
            Phase::EvalTest => "eval_test",
            Phase::Augment => "augment",
        }
    }

    /// Parses a stored phase name.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.as_str() == name)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind of an example row: from the seed file, from the test file, or
/// written by an augmentation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleKind {
    Seed,
    Test,
    Generated,
}

impl ExampleKind {
    /// Returns the name stored in `examples.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExampleKind::Seed => "seed",
            ExampleKind::Test => "test",
            ExampleKind::Generated => "generated",
        }
    }
}

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub name: String,
    pub method: String,
    pub status: String,
    pub config_json: String,
    pub seed_path: String,
    pub seed_sha256: String,
    pub test_path: Option<String>,
    pub test_sha256: Option<String>,
    pub stop_reason: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Fields of a new run, recorded before any work starts.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub name: &'a str,
    pub method: &'a str,
    pub config_json: &'a str,
    pub seed_path: &'a str,
    pub seed_sha256: &'a str,
    pub test_path: Option<&'a str>,
    pub test_sha256: Option<&'a str>,
}

/// Inserts a run with status 'running' and returns its id.
pub async fn insert_run(executor: impl SqliteExecutor<'_>, run: &NewRun<'_>) -> sqlx::Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO runs (name, method, config_json, seed_path, seed_sha256, test_path, test_sha256)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(run.name)
    .bind(run.method)
    .bind(run.config_json)
    .bind(run.seed_path)
    .bind(run.seed_sha256)
    .bind(run.test_path)
    .bind(run.test_sha256)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

/// Returns the id the next inserted run will most likely get, for default
/// run names. Two processes creating runs at once may both see the same
/// value, but the unique name then makes the second insert fail instead of
/// mixing the runs.
pub async fn next_run_id(executor: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM runs").fetch_one(executor).await
}

/// Finds a run by name, or by numeric id when no run has that name.
pub async fn find_run(conn: &mut SqliteConnection, name_or_id: &str) -> sqlx::Result<Option<RunRow>> {
    let by_name = sqlx::query_as::<_, RunRow>("SELECT * FROM runs WHERE name = ?")
        .bind(name_or_id)
        .fetch_optional(&mut *conn)
        .await?;
    if by_name.is_some() {
        return Ok(by_name);
    }
    let Ok(id) = name_or_id.parse::<i64>() else {
        return Ok(None);
    };
    sqlx::query_as::<_, RunRow>("SELECT * FROM runs WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// Sets a run's status ('running', 'finished' or 'failed') and stop reason;
/// a status other than 'running' also stamps `finished_at`.
pub async fn set_run_status(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    status: &str,
    stop_reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE runs SET status = ?1, stop_reason = ?2,
             finished_at = CASE WHEN ?1 = 'running' THEN NULL
                                ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
         WHERE id = ?3",
    )
    .bind(status)
    .bind(stop_reason)
    .bind(run_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// A row of `examples`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExampleRow {
    pub id: i64,
    pub run_id: i64,
    pub kind: String,
    pub question: String,
    pub answer: String,
    pub source_line: Option<i64>,
    pub parent_id: Option<i64>,
    pub iteration: Option<i64>,
    pub method: Option<String>,
    pub teacher_call_id: Option<i64>,
    pub position: i64,
}

/// Inserts a seed or test example read from line `source_line` (1-based)
/// of its file and returns its id.
pub async fn insert_file_example(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    kind: ExampleKind,
    question: &str,
    answer: &str,
    source_line: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO examples (run_id, kind, question, answer, source_line)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(run_id)
    .bind(kind.as_str())
    .bind(question)
    .bind(answer)
    .bind(source_line)
    .fetch_one(executor)
    .await
}

/// A generated example about to be stored.
#[derive(Debug, Clone)]
pub struct NewGenerated<'a> {
    pub run_id: i64,
    /// The seed example it was generated from; the schema rejects any other kind.
    pub parent_id: i64,
    /// The iteration whose augment phase produced it; it joins the training
    /// set of iteration + 1.
    pub iteration: i64,
    /// 'llm2llm', 'eda' or 'auggpt'.
    pub method: &'a str,
    pub teacher_call_id: Option<i64>,
    /// Order within (run, iteration).
    pub position: i64,
    pub question: &'a str,
    pub answer: &'a str,
}

/// Inserts a generated example and returns its id.
pub async fn insert_generated_example(
    executor: impl SqliteExecutor<'_>,
    example: &NewGenerated<'_>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO examples
             (run_id, kind, question, answer, parent_id, iteration, method, teacher_call_id, position)
         VALUES (?, 'generated', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(example.run_id)
    .bind(example.question)
    .bind(example.answer)
    .bind(example.parent_id)
    .bind(example.iteration)
    .bind(example.method)
    .bind(example.teacher_call_id)
    .bind(example.position)
    .fetch_one(executor)
    .await
}

/// Returns a run's examples of one kind: file examples in file order,
/// generated ones by (iteration, position).
pub async fn examples_of_kind(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    kind: ExampleKind,
) -> sqlx::Result<Vec<ExampleRow>> {
    sqlx::query_as(
        "SELECT id, run_id, kind, question, answer, source_line, parent_id, iteration, method, teacher_call_id, position
         FROM examples WHERE run_id = ? AND kind = ?
         ORDER BY iteration, position, source_line, id",
    )
    .bind(run_id)
    .bind(kind.as_str())
    .fetch_all(executor)
    .await
}

/// Returns the training set D_n of iteration `iteration`: the seed examples
/// in file order, then every generated example of an earlier iteration by
/// (iteration, position). The order is a pure function of the stored rows,
/// so a resumed run trains on the same sequence.
pub async fn training_set(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
) -> sqlx::Result<Vec<ExampleRow>> {
    sqlx::query_as(
        "SELECT id, run_id, kind, question, answer, source_line, parent_id, iteration, method, teacher_call_id, position
         FROM examples
         WHERE run_id = ?1 AND (kind = 'seed' OR (kind = 'generated' AND iteration < ?2))
         ORDER BY kind = 'generated', iteration, position, source_line, id",
    )
    .bind(run_id)
    .bind(iteration)
    .fetch_all(executor)
    .await
}

/// A row of `phases`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PhaseRow {
    pub run_id: i64,
    pub iteration: i64,
    pub phase: String,
    pub status: String,
    pub summary_json: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seconds: f64,
}

/// Marks a phase as running, creating its row or reopening a row left
/// 'running' or 'failed' by an earlier attempt. A 'done' row is left as is.
pub async fn start_phase(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
    phase: Phase,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO phases (run_id, iteration, phase) VALUES (?, ?, ?)
         ON CONFLICT (run_id, iteration, phase) DO UPDATE SET status = 'running'
         WHERE status <> 'done'",
    )
    .bind(run_id)
    .bind(iteration)
    .bind(phase.as_str())
    .execute(executor)
    .await?;
    Ok(())
}

/// Marks a phase 'done' with its summary and adds `seconds` of wall-clock
/// time to it. Call it in the transaction that writes the phase's results.
pub async fn finish_phase(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
    phase: Phase,
    summary_json: &str,
    seconds: f64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO phases (run_id, iteration, phase, status, summary_json, finished_at, seconds)
         VALUES (?1, ?2, ?3, 'done', ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?5)
         ON CONFLICT (run_id, iteration, phase) DO UPDATE SET
             status = 'done', summary_json = ?4,
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             seconds = seconds + ?5",
    )
    .bind(run_id)
    .bind(iteration)
    .bind(phase.as_str())
    .bind(summary_json)
    .bind(seconds)
    .execute(executor)
    .await?;
    Ok(())
}

/// Marks a phase 'failed' and adds the seconds spent on the failed attempt.
pub async fn fail_phase(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
    phase: Phase,
    seconds: f64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE phases SET status = 'failed', seconds = seconds + ?
         WHERE run_id = ? AND iteration = ? AND phase = ? AND status <> 'done'",
    )
    .bind(seconds)
    .bind(run_id)
    .bind(iteration)
    .bind(phase.as_str())
    .execute(executor)
    .await?;
    Ok(())
}

/// Returns one phase's row, if it was ever started.
pub async fn phase(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
    phase: Phase,
) -> sqlx::Result<Option<PhaseRow>> {
    sqlx::query_as("SELECT * FROM phases WHERE run_id = ? AND iteration = ? AND phase = ?")
        .bind(run_id)
        .bind(iteration)
        .bind(phase.as_str())
        .fetch_optional(executor)
        .await
}

/// Returns every phase row of a run by iteration, in run order.
pub async fn phases(executor: impl SqliteExecutor<'_>, run_id: i64) -> sqlx::Result<Vec<PhaseRow>> {
    sqlx::query_as(
        "SELECT * FROM phases WHERE run_id = ?
         ORDER BY iteration,
                  CASE phase WHEN 'train' THEN 0 WHEN 'eval_seed' THEN 1
                             WHEN 'eval_test' THEN 2 WHEN 'augment' THEN 3 ELSE 4 END",
    )
    .bind(run_id)
    .fetch_all(executor)
    .await
}

/// Metrics of one optimizer step, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TrainingMetricRow {
    pub run_id: i64,
    pub iteration: i64,
    pub step: i64,
    pub epoch: i64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub tokens: i64,
}

/// Inserts (or, for a retrained step, replaces) one step's metrics.
pub async fn insert_training_metric(
    executor: impl SqliteExecutor<'_>,
    metric: &TrainingMetricRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO training_metrics
             (run_id, iteration, step, epoch, loss, lr, grad_norm, tokens)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(metric.run_id)
    .bind(metric.iteration)
    .bind(metric.step)
    .bind(metric.epoch)
    .bind(metric.loss)
    .bind(metric.lr)
    .bind(metric.grad_norm)
    .bind(metric.tokens)
    .execute(executor)
    .await?;
    Ok(())
}

/// Returns one iteration's training metrics by step.
pub async fn training_metrics(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
) -> sqlx::Result<Vec<TrainingMetricRow>> {
    sqlx::query_as("SELECT * FROM training_metrics WHERE run_id = ? AND iteration = ? ORDER BY step")
        .bind(run_id)
        .bind(iteration)
        .fetch_all(executor)
        .await
}

/// A row of `predictions`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PredictionRow {
    pub run_id: i64,
    pub iteration: i64,
    pub example_id: i64,
    /// Raw generated text.
    pub output: String,
    /// The answer extracted from `output`, if any rule found one.
    pub extracted: Option<String>,
    /// The extraction rule that decided.
    pub rule: String,
    pub correct: bool,
}

/// Inserts (or, for a re-evaluated example, replaces) one prediction.
pub async fn insert_prediction(executor: impl SqliteExecutor<'_>, prediction: &PredictionRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO predictions (run_id, iteration, example_id, output, extracted, rule, correct)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(prediction.run_id)
    .bind(prediction.iteration)
    .bind(prediction.example_id)
    .bind(&prediction.output)
    .bind(&prediction.extracted)
    .bind(&prediction.rule)
    .bind(prediction.correct)
    .execute(executor)
    .await?;
    Ok(())
}

/// Returns one iteration's predictions on examples of `kind`, by example id.
pub async fn predictions(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
    kind: ExampleKind,
) -> sqlx::Result<Vec<PredictionRow>> {
    sqlx::query_as(
        "SELECT p.* FROM predictions p JOIN examples e ON e.id = p.example_id
         WHERE p.run_id = ? AND p.iteration = ? AND e.kind = ?
         ORDER BY p.example_id",
    )
    .bind(run_id)
    .bind(iteration)
    .bind(kind.as_str())
    .fetch_all(executor)
    .await
}

/// A seed example the student answered wrongly, with its output.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Miss {
    pub example_id: i64,
    pub question: String,
    pub answer: String,
    pub output: String,
}

/// Returns the seed examples missed at `iteration`, in file order. Only seed
/// examples are returned, so generated ones can never reach the teacher
/// through this path (and the schema rejects them anyway).
pub async fn seed_misses(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
) -> sqlx::Result<Vec<Miss>> {
    sqlx::query_as(
        "SELECT e.id AS example_id, e.question, e.answer, p.output
         FROM predictions p JOIN examples e ON e.id = p.example_id
         WHERE p.run_id = ? AND p.iteration = ? AND e.kind = 'seed' AND p.correct = 0
         ORDER BY e.source_line, e.id",
    )
    .bind(run_id)
    .bind(iteration)
    .fetch_all(executor)
    .await
}

/// An item a teacher reply contained that was not accepted.
#[derive(Debug, Clone)]
pub struct NewRejectedItem<'a> {
    pub run_id: i64,
    pub iteration: i64,
    pub call_id: Option<i64>,
    pub seed_example_id: Option<i64>,
    pub reason: &'a str,
    pub text: &'a str,
}

/// Inserts a rejected item.
pub async fn insert_rejected_item(
    executor: impl SqliteExecutor<'_>,
    item: &NewRejectedItem<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO rejected_items (run_id, iteration, call_id, seed_example_id, reason, text)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(item.run_id)
    .bind(item.iteration)
    .bind(item.call_id)
    .bind(item.seed_example_id)
    .bind(item.reason)
    .bind(item.text)
    .execute(executor)
    .await?;
    Ok(())
}

/// Returns a run's rejected-item counts for one iteration, by reason.
pub async fn rejected_counts(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    iteration: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT reason, COUNT(*) FROM rejected_items WHERE run_id = ? AND iteration = ?
         GROUP BY reason ORDER BY reason",
    )
    .bind(run_id)
    .bind(iteration)
    .fetch_all(executor)
    .await
}
