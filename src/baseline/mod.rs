//! Baselines run through the same pipeline as LLM2LLM: plain fine-tuning,
//! EDA (Wei and Zou, 2019) and AugGPT (Dai et al., 2023).
//!
//! A baseline is a run with `runs.method` 'finetune', 'eda' or 'auggpt'. It
//! builds its training set once, before training. EDA and AugGPT generate
//! examples from every seed example in an augment phase recorded at
//! iteration [`AUGMENT_ITERATION`] (-1). The loop trains iteration n on the
//! seed set plus the examples generated in iterations before n, so these
//! examples belong to the training set of iteration 0. Then the LLM2LLM
//! loop runs for one iteration (train, evaluate on the seed and test sets)
//! with the same student, settings, database and reports.

pub mod auggpt;
pub mod cli;
pub mod eda;
pub mod generate;
pub mod store;
pub mod wordnet;

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use eda::EdaConfig;

/// The iteration whose augment phase writes a baseline's generated
/// examples: one before the only training iteration, 0.
pub const AUGMENT_ITERATION: i64 = -1;

/// A baseline method, stored as `runs.method` and `examples.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The seed set alone.
    Finetune,
    /// EDA: synonym replacement, random insertion, swap and deletion.
    Eda,
    /// AugGPT: the teacher rephrases every seed question.
    #[value(name = "auggpt")]
    #[serde(rename = "auggpt")]
    AugGpt,
}

impl Method {
    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Finetune => "finetune",
            Method::Eda => "eda",
            Method::AugGpt => "auggpt",
        }
    }
}

/// The run whose number of generated examples a baseline matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRun {
    pub id: i64,
    pub name: String,
    /// Generated examples in that run, over all its iterations.
    pub generated: usize,
}

/// Everything a baseline run needs besides the run configuration; stored as
/// `runs.baseline_json` so a resumed baseline generates the same examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineSettings {
    pub method: Method,
    /// Generated examples per seed example, unless `matched` sets the total.
    pub per_example: usize,
    /// When set, the baseline generates exactly `matched.generated` examples,
    /// spread over the seed examples by [`split_evenly`].
    pub matched: Option<MatchedRun>,
    /// EDA rates (`n_aug` is replaced by the per-example counts).
    pub eda: EdaConfig,
    /// Seed of EDA's random choices.
    pub eda_seed: u64,
    /// WordNet database folder, resolved when the run was created.
    pub wordnet_dir: PathBuf,
    /// AugGPT: teacher calls per seed example at most, counting the calls
    /// that make up for rejected or missing rephrasings.
    pub max_calls_per_example: u32,
}

impl BaselineSettings {
    /// Generated examples wanted from each of `seeds` seed examples.
    pub fn counts(&self, seeds: usize) -> Vec<usize> {
        match (self.method, &self.matched) {
            (Method::Finetune, _) => vec![0; seeds],
            (_, Some(matched)) => split_evenly(matched.generated, seeds),
            (_, None) => vec![self.per_example; seeds],
        }
    }
}

/// Splits `total` generated examples over `seeds` seed examples as evenly as
/// possible: each gets `total / seeds`, and the first `total % seeds` get one
/// more, so the counts add up to `total` exactly. Used to match another
/// run's number of generated examples.
pub fn split_evenly(total: usize, seeds: usize) -> Vec<usize> {
    if seeds == 0 {
        return Vec::new();
    }
    let (base, extra) = (total / seeds, total % seeds);
    (0..seeds).map(|i| base + usize::from(i < extra)).collect()
}

/// Looks up the run a baseline should match (by name, or id when no run has
/// that name) and counts its generated examples. Warns when that run is
/// unfinished, used another seed file (`seed_sha256` differs) or generated
/// nothing.
pub async fn matched_run(
    pool: &SqlitePool,
    name_or_id: &str,
    seed_sha256: &str,
) -> anyhow::Result<MatchedRun> {
    let mut conn = pool
        .acquire()
        .await
        .context("failed to connect to the run database")?;
    let run = crate::store::find_run(&mut conn, name_or_id)
        .await
        .context("failed to look up the run to match")?
        .with_context(|| {
            format!("no run named {name_or_id:?} in this database; `llm2llm list` shows the runs")
        })?;
    let generated = store::count_generated(&mut *conn, run.id)
        .await
        .context("failed to count the matched run's generated examples")?;
    if run.status != "finished" {
        tracing::warn!(run = %run.name, status = %run.status, "the matched run is not finished, so it may still generate more examples");
    }
    if run.seed_sha256 != seed_sha256 {
        tracing::warn!(run = %run.name, "the matched run used another seed file, so the comparison is not on the same seed data");
    }
    if generated == 0 {
        tracing::warn!(run = %run.name, "the matched run generated no examples, so this baseline trains on the seed set alone");
    }
    tracing::info!(run = %run.name, generated, "matching the generated-example count of another run");
    Ok(MatchedRun {
        id: run.id,
        name: run.name,
        generated: generated as usize,
    })
}
