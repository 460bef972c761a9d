//! Per-iteration numbers of a run, computed from the base tables
//! (`examples`, `predictions`, `teacher_calls`, `rejected_items`, `phases`,
//! `training_metrics`) rather than from the phase summaries, so a report
//! works for any run the schema can record, finished or not.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::SqlitePool;

use super::ReportError;

/// The phases of an iteration, in the order they run.
pub const PHASES: [&str; 4] = ["train", "eval_seed", "eval_test", "augment"];

/// One iteration of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IterationRow {
    pub iteration: i64,
    /// Size of the training set D_n: every seed example plus the generated
    /// examples of earlier iterations.
    pub train_size: i64,
    /// Mean training loss over the last epoch; `None` before training.
    pub train_loss: Option<f64>,
    /// Seed examples evaluated and answered correctly.
    pub seed_evaluated: i64,
    pub seed_correct: i64,
    /// `seed_correct / seed_evaluated`, as a fraction; `None` before evaluation.
    pub seed_accuracy: Option<f64>,
    pub test_evaluated: i64,
    pub test_correct: i64,
    /// As `seed_accuracy`, on the test set; `None` without a test set.
    pub test_accuracy: Option<f64>,
    /// Seed examples answered wrongly; `None` before evaluation.
    pub misses: Option<i64>,
    /// Teacher requests of the iteration (each is one journal row), and how
    /// many of them failed.
    pub teacher_calls: i64,
    pub teacher_failed: i64,
    /// Items the teacher (or a baseline) produced: `accepted + rejected`.
    pub generated: i64,
    /// Generated examples of this iteration; they join the training set of
    /// the next one.
    pub accepted: i64,
    pub rejected: i64,
    pub rejected_by_reason: BTreeMap<String, i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Teacher cost from the run's configured prices per million tokens, in
    /// their currency; `None` when the configuration has no prices.
    pub cost: Option<f64>,
    /// Wall-clock seconds per phase (`train`, `eval_seed`, `eval_test`,
    /// `augment`), summed over attempts; phases not started are absent.
    pub phase_seconds: BTreeMap<String, f64>,
    /// Phases marked `done`.
    pub phases_done: Vec<String>,
}

impl IterationRow {
    /// Returns the seconds of all phases together.
    pub fn total_seconds(&self) -> f64 {
        self.phase_seconds.values().sum()
    }

    /// Returns the seconds of a phase, 0 when it did not run.
    pub fn seconds(&self, phase: &str) -> f64 {
        self.phase_seconds.get(phase).copied().unwrap_or(0.0)
    }
}

/// Prices per million tokens, read from a run's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

impl Prices {
    /// Reads `price_prompt_per_million` and `price_completion_per_million`
    /// from the `teacher` table of a run configuration, or from its top
    /// level; `None` when either is missing.
    pub fn from_config(config: &serde_json::Value) -> Option<Prices> {
        let read = |key: &str| {
            config
                .get("teacher")
                .and_then(|teacher| teacher.get(key))
                .or_else(|| config.get(key))
                .and_then(serde_json::Value::as_f64)
        };
        Some(Prices {
            prompt_per_million: read("price_prompt_per_million")?,
            completion_per_million: read("price_completion_per_million")?,
        })
    }

    /// Returns the cost of the given token counts.
    pub fn cost(&self, prompt_tokens: i64, completion_tokens: i64) -> f64 {
        (prompt_tokens as f64 * self.prompt_per_million
            + completion_tokens as f64 * self.completion_per_million)
            / 1e6
    }
}

fn database(what: &'static str) -> impl FnOnce(sqlx::Error) -> ReportError {
    move |source| ReportError::Database { what, source }
}

/// Computes the per-iteration rows of a run, in iteration order. An
/// iteration appears once any of its phases, predictions, generated
/// examples or teacher calls is recorded.
pub async fn iteration_rows(
    pool: &SqlitePool,
    run_id: i64,
) -> Result<Vec<IterationRow>, ReportError> {
    let config: Option<String> = sqlx::query_scalar("SELECT config_json FROM runs WHERE id = ?")
        .bind(run_id)
        .fetch_optional(pool)
        .await
        .map_err(database("read the run"))?;
    let Some(config) = config else {
        return Err(ReportError::RunNotFound {
            key: run_id.to_string(),
        });
    };
    let prices = serde_json::from_str(&config)
        .ok()
        .and_then(|config| Prices::from_config(&config));

    let iterations: Vec<i64> = sqlx::query_scalar(
        "SELECT iteration FROM phases WHERE run_id = ?1 \
         UNION SELECT iteration FROM predictions WHERE run_id = ?1 \
         UNION SELECT iteration FROM examples WHERE run_id = ?1 AND kind = 'generated' \
         UNION SELECT iteration FROM teacher_calls WHERE run_id = ?1 \
         ORDER BY 1",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("list the iterations"))?;
    let mut rows: BTreeMap<i64, IterationRow> = iterations
        .into_iter()
        .map(|iteration| {
            (
                iteration,
                IterationRow {
                    iteration,
                    ..IterationRow::default()
                },
            )
        })
        .collect();

    let seed_count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM examples WHERE run_id = ? AND kind = 'seed'")
            .bind(run_id)
            .fetch_one(pool)
            .await
            .map_err(database("count the seed examples"))?;
    let generated: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT iteration, COUNT(*) FROM examples WHERE run_id = ? AND kind = 'generated' GROUP BY iteration",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("count the generated examples"))?;
    for row in rows.values_mut() {
        let earlier: i64 = generated
            .iter()
            .filter(|(iteration, _)| *iteration < row.iteration)
            .map(|(_, n)| n)
            .sum();
        row.train_size = seed_count + earlier;
        row.accepted = generated
            .iter()
            .find(|(iteration, _)| *iteration == row.iteration)
            .map_or(0, |(_, n)| *n);
    }

    add_predictions(pool, run_id, &mut rows).await?;
    add_teacher(pool, run_id, prices, &mut rows).await?;
    add_phases(pool, run_id, &mut rows).await?;

    for row in rows.values_mut() {
        row.generated = row.accepted + row.rejected;
    }
    Ok(rows.into_values().collect())
}

async fn add_predictions(
    pool: &SqlitePool,
    run_id: i64,
    rows: &mut BTreeMap<i64, IterationRow>,
) -> Result<(), ReportError> {
    let counts: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT p.iteration, e.kind, COUNT(*), COALESCE(SUM(p.correct), 0) \
         FROM predictions p JOIN examples e ON e.id = p.example_id \
         WHERE p.run_id = ? GROUP BY p.iteration, e.kind",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("count the predictions"))?;
    for (iteration, kind, evaluated, correct) in counts {
        let Some(row) = rows.get_mut(&iteration) else {
            continue;
        };
        let accuracy = (evaluated > 0).then(|| correct as f64 / evaluated as f64);
        match kind.as_str() {
            "seed" => {
                row.seed_evaluated = evaluated;
                row.seed_correct = correct;
                row.seed_accuracy = accuracy;
                row.misses = Some(evaluated - correct);
            }
            "test" => {
                row.test_evaluated = evaluated;
                row.test_correct = correct;
                row.test_accuracy = accuracy;
            }
            // Generated examples are not evaluated by the loop; a prediction
            // on one would not count towards either accuracy.
            _ => {}
        }
    }
    Ok(())
}

async fn add_teacher(
    pool: &SqlitePool,
    run_id: i64,
    prices: Option<Prices>,
    rows: &mut BTreeMap<i64, IterationRow>,
) -> Result<(), ReportError> {
    let calls: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT iteration, COUNT(*), COALESCE(SUM(status = 'failed'), 0), \
         COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) \
         FROM teacher_calls WHERE run_id = ? GROUP BY iteration",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("sum the teacher calls"))?;
    for (iteration, count, failed, prompt_tokens, completion_tokens) in calls {
        let Some(row) = rows.get_mut(&iteration) else {
            continue;
        };
        row.teacher_calls = count;
        row.teacher_failed = failed;
        row.prompt_tokens = prompt_tokens;
        row.completion_tokens = completion_tokens;
    }
    for row in rows.values_mut() {
        row.cost = prices.map(|prices| prices.cost(row.prompt_tokens, row.completion_tokens));
    }

    let rejected: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT iteration, reason, COUNT(*) FROM rejected_items WHERE run_id = ? GROUP BY iteration, reason",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("count the rejected items"))?;
    for (iteration, reason, count) in rejected {
        let Some(row) = rows.get_mut(&iteration) else {
            continue;
        };
        row.rejected += count;
        row.rejected_by_reason.insert(reason, count);
    }
    Ok(())
}

async fn add_phases(
    pool: &SqlitePool,
    run_id: i64,
    rows: &mut BTreeMap<i64, IterationRow>,
) -> Result<(), ReportError> {
    let phases: Vec<(i64, String, String, f64)> =
        sqlx::query_as("SELECT iteration, phase, status, seconds FROM phases WHERE run_id = ?")
            .bind(run_id)
            .fetch_all(pool)
            .await
            .map_err(database("read the phases"))?;
    for (iteration, phase, status, seconds) in phases {
        let Some(row) = rows.get_mut(&iteration) else {
            continue;
        };
        if status == "done" {
            row.phases_done.push(phase.clone());
        }
        row.phase_seconds.insert(phase, seconds);
    }
    for row in rows.values_mut() {
        let order = |phase: &String| {
            PHASES
                .iter()
                .position(|known| known == phase)
                .unwrap_or(PHASES.len())
        };
        row.phases_done.sort_by_key(order);
    }

    // Mean loss over each iteration's last epoch: smoother than the last
    // step's loss, and comparable across training-set sizes.
    let losses: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT t.iteration, AVG(t.loss) FROM training_metrics t \
         WHERE t.run_id = ?1 AND t.epoch = (SELECT MAX(epoch) FROM training_metrics \
             WHERE run_id = ?1 AND iteration = t.iteration) \
         GROUP BY t.iteration",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(database("read the training losses"))?;
    for (iteration, loss) in losses {
        if let Some(row) = rows.get_mut(&iteration) {
            row.train_loss = Some(loss);
        }
    }
    Ok(())
}

/// Returns the rejection reasons that occur in any row, sorted.
pub fn rejection_reasons(rows: &[IterationRow]) -> Vec<String> {
    let reasons: BTreeSet<&String> = rows
        .iter()
        .flat_map(|row| row.rejected_by_reason.keys())
        .collect();
    reasons.into_iter().cloned().collect()
}
