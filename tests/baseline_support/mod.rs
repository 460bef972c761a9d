//! Shared helpers for the baseline tests: runs with seed examples in a
//! fresh database, and baseline settings.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use llm2llm::baseline::eda::EdaConfig;
use llm2llm::baseline::wordnet::DEFAULT_WORDNET_DIR;
use llm2llm::baseline::{BaselineSettings, MatchedRun, Method};
use sqlx::SqlitePool;

/// Math problems written for these tests: (question, solution).
pub const SEEDS: &[(&str, &str)] = &[
    (
        "Mia packs 4 boxes with 6 oranges each. How many oranges does she pack?",
        "4*6=<<4*6=24>>24\n#### 24",
    ),
    (
        "A library lends 35 books on Monday and 17 fewer on Tuesday. How many books does it lend on Tuesday?",
        "35-17=<<35-17=18>>18\n#### 18",
    ),
    (
        "Jon saves $12 every week for 5 weeks, then spends $20 on a gift. How much money does he have left?",
        "12*5=<<12*5=60>>60\n60-20=<<60-20=40>>40\n#### 40",
    ),
];

/// Opens a fresh run database in `dir`.
pub async fn open_db(dir: &Path) -> SqlitePool {
    llm2llm::store::open(&dir.join("runs.db")).await.unwrap()
}

/// Records a run of `method` with [`SEEDS`] as its seed set; returns the run
/// id and the seed example ids in order.
pub async fn run_with_seeds(pool: &SqlitePool, name: &str, method: &str) -> (i64, Vec<i64>) {
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (name, method, config_json, seed_path, seed_sha256) \
         VALUES (?, ?, '{}', 'seed.jsonl', 'seed-sha') RETURNING id",
    )
    .bind(name)
    .bind(method)
    .fetch_one(pool)
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (line, (question, answer)) in SEEDS.iter().enumerate() {
        let id = llm2llm::store::insert_file_example(
            pool,
            run_id,
            llm2llm::store::ExampleKind::Seed,
            question,
            answer,
            line as i64 + 1,
        )
        .await
        .unwrap();
        ids.push(id);
    }
    (run_id, ids)
}

/// Baseline settings for `method` with `per_example` examples per seed.
pub fn settings(
    method: Method,
    per_example: usize,
    matched: Option<MatchedRun>,
) -> BaselineSettings {
    BaselineSettings {
        method,
        per_example,
        matched,
        eda: EdaConfig::default(),
        eda_seed: 3,
        wordnet_dir: PathBuf::from(DEFAULT_WORDNET_DIR),
        max_calls_per_example: 3,
    }
}

/// Generated examples of a run: (parent id, question, answer, teacher call
/// id, method, iteration), in position order.
pub async fn generated(
    pool: &SqlitePool,
    run_id: i64,
) -> Vec<(i64, String, String, Option<i64>, String, i64)> {
    sqlx::query_as(
        "SELECT parent_id, question, answer, teacher_call_id, method, iteration FROM examples \
         WHERE run_id = ? AND kind = 'generated' ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Answer of an example.
pub async fn answer_of(pool: &SqlitePool, example_id: i64) -> String {
    sqlx::query_scalar("SELECT answer FROM examples WHERE id = ?")
        .bind(example_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Status of a run's phase, if started.
pub async fn phase_status(
    pool: &SqlitePool,
    run_id: i64,
    iteration: i64,
    phase: &str,
) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM phases WHERE run_id = ? AND iteration = ? AND phase = ?")
        .bind(run_id)
        .bind(iteration)
        .bind(phase)
        .fetch_optional(pool)
        .await
        .unwrap()
}
