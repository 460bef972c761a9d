//! `llm2llm compare` over a database holding an LLM2LLM run and an EDA
//! baseline: the final rows, the formats and the chart.

#[path = "baseline_support/mod.rs"]
mod baseline_support;

use baseline_support::{open_db, run_with_seeds};
use llm2llm::report::Format;
use llm2llm::report::compare::{compare_runs, draw_comparison_chart, render_comparison};
use llm2llm::store::{ExampleKind, NewGenerated, insert_file_example, insert_generated_example};
use sqlx::SqlitePool;

/// Adds `count` generated examples of `iteration` to a run.
async fn add_generated(
    pool: &SqlitePool,
    run_id: i64,
    parent: i64,
    iteration: i64,
    method: &str,
    count: usize,
) {
    for position in 0..count {
        let question = format!("{method} question {iteration}.{position}");
        let example = NewGenerated {
            run_id,
            parent_id: parent,
            iteration,
            method,
            teacher_call_id: None,
            position: position as i64,
            question: &question,
            answer: "#### 1",
        };
        insert_generated_example(pool, &example).await.unwrap();
    }
}

/// Records predictions of `iteration` on `examples`, the first `correct`
/// of them right.
async fn add_predictions(
    pool: &SqlitePool,
    run_id: i64,
    iteration: i64,
    examples: &[i64],
    correct: usize,
) {
    for (index, example_id) in examples.iter().enumerate() {
        sqlx::query(
            "INSERT INTO predictions (run_id, iteration, example_id, output, extracted, rule, correct) \
             VALUES (?, ?, ?, '#### 1', '1', 'hash_marker', ?)",
        )
        .bind(run_id)
        .bind(iteration)
        .bind(example_id)
        .bind(i64::from(index < correct))
        .execute(pool)
        .await
        .unwrap();
    }
}

async fn add_teacher_call(
    pool: &SqlitePool,
    run_id: i64,
    iteration: i64,
    seed_id: i64,
    tokens: (i64, i64),
) {
    sqlx::query(
        "INSERT INTO teacher_calls (run_id, iteration, purpose, seed_example_id, request_key, model, base_url, \
         request_json, status, prompt_tokens, completion_tokens) \
         VALUES (?, ?, 'llm2llm', ?, ?, 'm', 'http://127.0.0.1', '{}', 'ok', ?, ?)",
    )
    .bind(run_id)
    .bind(iteration)
    .bind(seed_id)
    .bind(format!("key-{run_id}-{iteration}-{seed_id}"))
    .bind(tokens.0)
    .bind(tokens.1)
    .execute(pool)
    .await
    .unwrap();
}

async fn add_test_examples(pool: &SqlitePool, run_id: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for line in 0..count {
        let id = insert_file_example(
            pool,
            run_id,
            ExampleKind::Test,
            &format!("test {line}"),
            "#### 1",
            line as i64 + 1,
        )
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

/// An LLM2LLM run with two iterations (4 examples generated in iteration 0,
/// 1000/500 teacher tokens) and an EDA baseline with 4 examples generated
/// before its one iteration.
async fn two_runs(pool: &SqlitePool) {
    let (llm2llm, seeds) = run_with_seeds(pool, "targeted", "llm2llm").await;
    let tests = add_test_examples(pool, llm2llm, 4).await;
    add_predictions(pool, llm2llm, 0, &seeds, 1).await;
    add_predictions(pool, llm2llm, 0, &tests, 1).await;
    add_teacher_call(pool, llm2llm, 0, seeds[1], (1000, 500)).await;
    add_generated(pool, llm2llm, seeds[1], 0, "llm2llm", 4).await;
    add_predictions(pool, llm2llm, 1, &seeds, 3).await;
    add_predictions(pool, llm2llm, 1, &tests, 3).await;

    let (eda, eda_seeds) = run_with_seeds(pool, "eda", "eda").await;
    let eda_tests = add_test_examples(pool, eda, 4).await;
    add_generated(pool, eda, eda_seeds[0], -1, "eda", 4).await;
    add_predictions(pool, eda, 0, &eda_seeds, 2).await;
    add_predictions(pool, eda, 0, &eda_tests, 2).await;
}

fn names() -> Vec<String> {
    vec!["targeted".to_string(), "eda".to_string()]
}

#[tokio::test]
async fn final_row_uses_the_last_evaluated_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;

    let runs = compare_runs(&pool, &names()).await.unwrap();

    let targeted = &runs[0].final_row;
    assert_eq!(targeted.iteration, Some(1));
    assert_eq!(targeted.train_size, Some(3 + 4));
    assert_eq!(targeted.test_accuracy, Some(0.75));
    assert_eq!(targeted.generated, 4);
    assert_eq!(
        (targeted.prompt_tokens, targeted.completion_tokens),
        (1000, 500)
    );
}

#[tokio::test]
async fn baseline_final_row_counts_examples_generated_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;

    let runs = compare_runs(&pool, &names()).await.unwrap();

    let eda = &runs[1].final_row;
    assert_eq!(eda.iteration, Some(0));
    assert_eq!(eda.train_size, Some(3 + 4));
    assert_eq!(eda.test_accuracy, Some(0.5));
    assert_eq!(eda.generated, 4);
    assert_eq!(eda.prompt_tokens + eda.completion_tokens, 0);
}

#[tokio::test]
async fn text_table_has_a_final_row_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;
    let runs = compare_runs(&pool, &names()).await.unwrap();

    let text = render_comparison(&runs, Format::Text);

    let final_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" final "))
        .collect();
    assert_eq!(final_lines.len(), 2, "{text}");
    assert!(final_lines[0].contains("75.0% (3/4)"), "{text}");
    assert!(final_lines[1].contains("50.0% (2/4)"), "{text}");
}

#[tokio::test]
async fn csv_has_one_line_per_iteration_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;
    let runs = compare_runs(&pool, &names()).await.unwrap();

    let csv = render_comparison(&runs, Format::Csv);

    // Header, targeted: 0, 1, final; eda: -1, 0, final.
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(
        lines[0].starts_with("run,method,iteration,train_size"),
        "{csv}"
    );
    assert!(lines.contains(&"eda,eda,-1,3,4,0,0,0,,0,0,,0,0,"), "{csv}");
}

#[tokio::test]
async fn json_lists_runs_in_the_requested_order() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;
    let runs = compare_runs(&pool, &["eda".to_string(), "targeted".to_string()])
        .await
        .unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&render_comparison(&runs, Format::Json)).unwrap();

    assert_eq!(json["runs"][0]["run"]["name"], "eda");
    assert_eq!(json["runs"][1]["final"]["generated"], 4);
}

#[tokio::test]
async fn chart_draws_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;
    let runs = compare_runs(&pool, &names()).await.unwrap();
    let path = dir.path().join("compare.svg");

    draw_comparison_chart(&path, &runs).unwrap();

    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(
        svg.contains("targeted (llm2llm)"),
        "legend lacks the LLM2LLM run"
    );
    assert!(svg.contains("eda (eda)"), "legend lacks the baseline");
}

#[tokio::test]
async fn unknown_run_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    two_runs(&pool).await;

    let err = compare_runs(&pool, &["targeted".to_string(), "nope".to_string()])
        .await
        .unwrap_err();

    assert!(err.to_string().contains("nope"), "{err}");
}
