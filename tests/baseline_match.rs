//! `--match-run` and the `llm2llm baseline` command end to end: a baseline
//! generates exactly as many examples as the matched run did, and then
//! trains and evaluates the tiny fixture student once on the seed set plus
//! those examples.

#[path = "baseline_support/mod.rs"]
mod baseline_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use baseline_support::{SEEDS, answer_of, generated, open_db, run_with_seeds, settings};
use llm2llm::baseline::generate::generate_examples;
use llm2llm::baseline::{Method, matched_run};
use llm2llm::store::{NewGenerated, insert_generated_example};
use llm2llm::teacher::Teacher;
use sqlx::SqlitePool;

/// Records an LLM2LLM run with `count` generated examples spread over
/// iterations 0 and 1, as a finished run would have them.
async fn llm2llm_run_with_generated(pool: &SqlitePool, name: &str, count: usize) -> i64 {
    let (run_id, seed_ids) = run_with_seeds(pool, name, "llm2llm").await;
    for position in 0..count {
        let example = NewGenerated {
            run_id,
            parent_id: seed_ids[position % seed_ids.len()],
            iteration: (position % 2) as i64,
            method: "llm2llm",
            teacher_call_id: None,
            position: position as i64,
            question: &format!("Generated question {position}: Ann has {position} pens. How many?"),
            answer: &format!("#### {position}"),
        };
        insert_generated_example(pool, &example).await.unwrap();
    }
    sqlx::query("UPDATE runs SET status = 'finished' WHERE id = ?")
        .bind(run_id)
        .execute(pool)
        .await
        .unwrap();
    run_id
}

#[tokio::test]
async fn matched_run_counts_every_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    llm2llm_run_with_generated(&pool, "source", 7).await;

    let matched = matched_run(&pool, "source", "seed-sha").await.unwrap();

    assert_eq!(matched.generated, 7);
    assert_eq!(matched.name, "source");
}

#[tokio::test]
async fn unknown_matched_run_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;

    let err = matched_run(&pool, "missing", "seed-sha").await.unwrap_err();

    assert!(
        format!("{err:#}").contains("no run named \"missing\""),
        "{err:#}"
    );
}

#[tokio::test]
async fn eda_baseline_reaches_the_matched_count() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    llm2llm_run_with_generated(&pool, "source", 7).await;
    let (run_id, seed_ids) = run_with_seeds(&pool, "eda", "eda").await;
    let matched = matched_run(&pool, "source", "seed-sha").await.unwrap();

    let count = generate_examples::<Teacher>(
        &pool,
        run_id,
        &settings(Method::Eda, 9, Some(matched)),
        None,
    )
    .await
    .unwrap();

    assert_eq!(count, 7);
    let rows = generated(&pool, run_id).await;
    let per_seed: Vec<usize> = seed_ids
        .iter()
        .map(|id| rows.iter().filter(|row| row.0 == *id).count())
        .collect();
    assert_eq!(per_seed, vec![3, 2, 2]);
    for (parent, question, answer, _, method, _) in rows {
        assert_eq!(answer, answer_of(&pool, parent).await, "{question}");
        assert_eq!(method, "eda");
    }
}

fn write_seed_file(dir: &Path) -> PathBuf {
    let path = dir.join("seed.jsonl");
    let lines: Vec<String> = SEEDS
        .iter()
        .map(|(question, answer)| {
            serde_json::json!({ "question": question, "answer": answer }).to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Runs `llm2llm baseline` from the repository root (where the default
/// prompt paths resolve) on the tiny fixture student, with short training
/// and evaluation.
fn baseline_command(db: &Path, seed: &Path, extra: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .current_dir(root)
        .arg("baseline")
        .args([
            "--seed",
            seed.to_str().unwrap(),
            "--test",
            seed.to_str().unwrap(),
        ])
        .args(["--db", db.to_str().unwrap()])
        .args([
            "--model",
            root.join("tests/fixtures/tiny-llama/model")
                .to_str()
                .unwrap(),
        ])
        .args(["--epochs", "1", "--max-new-tokens", "8"])
        .args(extra)
        .output()
        .unwrap()
}

/// `examples` of the train phase summary and the number of seed
/// predictions of iteration 0.
async fn trained_and_evaluated(pool: &SqlitePool, run_id: i64) -> (i64, i64) {
    let summary: String = sqlx::query_scalar(
        "SELECT summary_json FROM phases WHERE run_id = ? AND iteration = 0 AND phase = 'train' AND status = 'done'",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await
    .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let predictions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM predictions p JOIN examples e ON e.id = p.example_id \
         WHERE p.run_id = ? AND p.iteration = 0 AND e.kind = 'seed'",
    )
    .bind(run_id)
    .fetch_one(pool)
    .await
    .unwrap();
    (summary["examples"].as_i64().unwrap(), predictions)
}

async fn run_id_of(pool: &SqlitePool, name: &str) -> (i64, String) {
    sqlx::query_as("SELECT id, status FROM runs WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn baseline_command_trains_on_the_matched_data() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    llm2llm_run_with_generated(&pool, "source", 5).await;
    let seed = write_seed_file(dir.path());

    let output = baseline_command(
        &dir.path().join("runs.db"),
        &seed,
        &[
            "--method",
            "eda",
            "--match-run",
            "source",
            "--name",
            "eda-matched",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (run_id, status) = run_id_of(&pool, "eda-matched").await;
    assert_eq!(status, "finished");
    assert_eq!(generated(&pool, run_id).await.len(), 5);
    assert_eq!(
        trained_and_evaluated(&pool, run_id).await,
        (SEEDS.len() as i64 + 5, SEEDS.len() as i64)
    );
}

#[tokio::test]
async fn finetune_baseline_trains_on_the_seed_set_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let seed = write_seed_file(dir.path());

    let output = baseline_command(
        &dir.path().join("runs.db"),
        &seed,
        &["--method", "finetune", "--name", "plain"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (run_id, status) = run_id_of(&pool, "plain").await;
    assert_eq!(status, "finished");
    assert!(generated(&pool, run_id).await.is_empty());
    assert_eq!(
        trained_and_evaluated(&pool, run_id).await,
        (SEEDS.len() as i64, SEEDS.len() as i64)
    );
}

#[tokio::test]
async fn missing_wordnet_fails_before_recording_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let seed = write_seed_file(dir.path());
    let missing = dir.path().join("no-wordnet");

    let output = baseline_command(
        &dir.path().join("runs.db"),
        &seed,
        &[
            "--method",
            "eda",
            "--wordnet-dir",
            missing.to_str().unwrap(),
        ],
    );

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apt-get install wordnet-base"), "{stderr}");
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
}
