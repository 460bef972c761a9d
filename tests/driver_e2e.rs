//! End to end: three LLM2LLM iterations of the real binary on the tiny
//! fixture student with a scripted teacher on 127.0.0.1, checked through
//! the run database and the run folder.

mod driver_support;

use driver_support::{describe, llm2llm, ScriptedTeacher, Workspace, SEED_COUNT, TEST_COUNT};

const ITERATIONS: i64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_iterations_record_everything() {
    let teacher = ScriptedTeacher::start().await;
    let workspace = Workspace::new(&teacher.base_url, ITERATIONS as usize);
    let output = llm2llm(&workspace.run_args("e2e"), None).await;
    assert!(output.status.success(), "{}", describe(&output));

    let pool = workspace.pool().await;
    let (run_id, status): (i64, String) = sqlx::query_as("SELECT id, status FROM runs WHERE name = 'e2e'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "finished");

    // Iterations that ran: all three, unless the student missed no seed
    // example (then the run stops after that iteration's evaluation).
    let iterations_run: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT iteration) FROM phases WHERE run_id = ? AND phase = 'train' AND status = 'done'",
    )
    .bind(run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let stop_reason: Option<String> =
        sqlx::query_scalar("SELECT stop_reason FROM runs WHERE id = ?").bind(run_id).fetch_one(&pool).await.unwrap();
    if stop_reason.is_none() {
        assert_eq!(iterations_run, ITERATIONS, "every iteration trains");
    }

    for iteration in 0..iterations_run {
        let steps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM training_metrics WHERE run_id = ? AND iteration = ?")
            .bind(run_id)
            .bind(iteration)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(steps > 0, "iteration {iteration} has training metrics");

        let seed_predictions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM predictions p JOIN examples e ON e.id = p.example_id
             WHERE p.run_id = ? AND p.iteration = ? AND e.kind = 'seed'",
        )
        .bind(run_id)
        .bind(iteration)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(seed_predictions, SEED_COUNT as i64, "iteration {iteration} predicts every seed example");

        let test_predictions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM predictions p JOIN examples e ON e.id = p.example_id
             WHERE p.run_id = ? AND p.iteration = ? AND e.kind = 'test'",
        )
        .bind(run_id)
        .bind(iteration)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(test_predictions, TEST_COUNT as i64, "iteration {iteration} predicts every test example");

        let iteration_dir = workspace.db.parent().unwrap().join(run_id.to_string()).join(format!("iter-{iteration}"));
        let adapter = iteration_dir.join("adapter");
        assert!(adapter.join("adapter_config.json").is_file(), "iteration {iteration} saved adapter_config.json");
        assert!(adapter.join("adapter_model.safetensors").is_file(), "iteration {iteration} saved the adapter weights");

        // D_n is the seed set plus everything generated before iteration n.
        let expected_size: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM examples WHERE run_id = ?
             AND (kind = 'seed' OR (kind = 'generated' AND iteration < ?))",
        )
        .bind(run_id)
        .bind(iteration)
        .fetch_one(&pool)
        .await
        .unwrap();
        let train_lines = std::fs::read_to_string(iteration_dir.join("train.jsonl")).unwrap().lines().count();
        assert_eq!(train_lines as i64, expected_size, "train.jsonl of iteration {iteration} is D_{iteration}");
    }

    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM examples g LEFT JOIN examples p ON p.id = g.parent_id
         WHERE g.run_id = ? AND g.kind = 'generated' AND (p.kind IS NULL OR p.kind <> 'seed')",
    )
    .bind(run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "every generated example has a seed parent");

    let not_from_miss: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM examples g
         WHERE g.run_id = ?1 AND g.kind = 'generated' AND NOT EXISTS (
             SELECT 1 FROM predictions p
             WHERE p.run_id = ?1 AND p.iteration = g.iteration AND p.example_id = g.parent_id AND p.correct = 0)",
    )
    .bind(run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(not_from_miss, 0, "every generated example comes from a seed example missed in its iteration");

    let calls_not_from_miss: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM teacher_calls c
         WHERE c.run_id = ?1 AND NOT EXISTS (
             SELECT 1 FROM predictions p
             WHERE p.run_id = ?1 AND p.iteration = c.iteration AND p.example_id = c.seed_example_id AND p.correct = 0)",
    )
    .bind(run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(calls_not_from_miss, 0, "the teacher only sees seed examples missed in that iteration");

    let misses_before_last: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM predictions p JOIN examples e ON e.id = p.example_id
         WHERE p.run_id = ? AND e.kind = 'seed' AND p.correct = 0 AND p.iteration < ?",
    )
    .bind(run_id)
    .bind(iterations_run - 1)
    .fetch_one(&pool)
    .await
    .unwrap();
    let generated: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM examples WHERE run_id = ? AND kind = 'generated'")
        .bind(run_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    if misses_before_last > 0 {
        assert!(generated > 0, "misses before the last iteration produce new examples");
    }
    assert_eq!(teacher.request_count() as i64, misses_before_last, "one teacher request per missed seed example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_run_name_is_rejected() {
    let teacher = ScriptedTeacher::start().await;
    let workspace = Workspace::new(&teacher.base_url, 1);
    let first = llm2llm(&workspace.run_args("once"), None).await;
    assert!(first.status.success(), "{}", describe(&first));

    let again = llm2llm(&workspace.run_args("once"), None).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(stderr.contains("already finished"), "{stderr}");
    assert_eq!(teacher.request_count(), 0, "a one-iteration run never augments");
}
