//! Kill and resume. The real binary is stopped inside training, evaluation
//! and teacher calls, either by the `LLM2LLM_TEST_ABORT_AT` test hook (which
//! exits before the phase commits) or by SIGKILL at timed points. After the
//! resumes it must end with the same examples and predictions as an
//! uninterrupted run, and the hook-stopped run sends no teacher request twice.

mod driver_support;

use driver_support::{
    describe, example_snapshot, llm2llm, prediction_snapshot, ScriptedTeacher, Workspace,
};

const ITERATIONS: usize = 3;

/// The process exit status of the abort hook.
const ABORT_EXIT_CODE: i32 = 86;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_to_same_state() {
    let straight_teacher = ScriptedTeacher::start().await;
    let straight = Workspace::new(&straight_teacher.base_url, ITERATIONS);
    let output = llm2llm(&straight.run_args("straight"), None).await;
    assert!(output.status.success(), "uninterrupted run: {}", describe(&output));

    let teacher = ScriptedTeacher::start().await;
    let interrupted = Workspace::new(&teacher.base_url, ITERATIONS);
    let resume_args: Vec<String> =
        ["resume", "straight", "--db", interrupted.db.to_str().unwrap()].map(String::from).to_vec();

    // The first attempt starts the run; later ones alternate between
    // `resume` and `run --name`, which continues an unfinished run.
    // Each point lies after the previous one, so every attempt makes
    // progress and then stops inside the named phase.
    let abort_points =
        ["train:0", "augment:0", "train:1", "eval_seed:1", "eval_test:1", "augment:1", "train:2", "eval_seed:2"];
    for (attempt, point) in abort_points.iter().enumerate() {
        let args = if attempt % 2 == 0 { interrupted.run_args("straight") } else { resume_args.clone() };
        let output = llm2llm(&args, Some(point)).await;
        assert_eq!(output.status.code(), Some(ABORT_EXIT_CODE), "stopped at {point}: {}", describe(&output));
    }
    let output = llm2llm(&resume_args, None).await;
    assert!(output.status.success(), "final resume: {}", describe(&output));

    let straight_pool = straight.pool().await;
    let interrupted_pool = interrupted.pool().await;
    let expected_examples = example_snapshot(&straight_pool, "straight").await;
    let actual_examples = example_snapshot(&interrupted_pool, "straight").await;
    let expected_predictions = prediction_snapshot(&straight_pool, "straight").await;
    let actual_predictions = prediction_snapshot(&interrupted_pool, "straight").await;

    assert_eq!(actual_examples, expected_examples, "examples after kills and resumes");
    assert_eq!(actual_predictions, expected_predictions, "predictions after kills and resumes");
    assert!(teacher.repeated_requests().is_empty(), "requests sent twice: {:?}", teacher.repeated_requests());
    assert_eq!(
        teacher.request_count(),
        straight_teacher.request_count(),
        "the interrupted run sends as many requests as the uninterrupted one"
    );

    let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE name = 'straight'")
        .fetch_one(&interrupted_pool)
        .await
        .unwrap();
    assert_eq!(status, "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_rejects_changed_test_file() {
    let teacher = ScriptedTeacher::start().await;
    let workspace = Workspace::new(&teacher.base_url, ITERATIONS);
    let output = llm2llm(&workspace.run_args("changed"), Some("train:0")).await;
    assert_eq!(output.status.code(), Some(ABORT_EXIT_CODE), "{}", describe(&output));

    std::fs::write(&workspace.test, "{\"question\": \"2+2?\", \"answer\": \"#### 4\"}\n").unwrap();
    let output = llm2llm(&workspace.run_args("changed"), None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("test file"), "the message names the test file: {stderr}");

    let resume = ["resume", "changed", "--db", workspace.db.to_str().unwrap()].map(String::from).to_vec();
    let output = llm2llm(&resume, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("changed since the run started"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_runs_resume_to_same_state() {
    let straight_teacher = ScriptedTeacher::start().await;
    let straight = Workspace::new(&straight_teacher.base_url, ITERATIONS);
    let started = std::time::Instant::now();
    let output = llm2llm(&straight.run_args("killed"), None).await;
    let full_run = started.elapsed();
    assert!(output.status.success(), "uninterrupted run: {}", describe(&output));

    // SIGKILL after growing fractions of an uninterrupted run's time, so the
    // kills land in whatever the process is doing then: loading, training,
    // writing the database, or waiting for the teacher.
    let teacher = ScriptedTeacher::start().await;
    let interrupted = Workspace::new(&teacher.base_url, ITERATIONS);
    let mut killed = 0;
    for fraction in [0.2, 0.35, 0.5, 0.65, 0.8] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm2llm"))
            .args(interrupted.run_args("killed"))
            .env_remove("LLM2LLM_TEST_ABORT_AT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the llm2llm binary");
        let deadline = full_run.mul_f64(fraction);
        if tokio::time::timeout(deadline, child.wait()).await.is_err() {
            child.kill().await.expect("kill the run");
            killed += 1;
        }
    }
    let resume_args: Vec<String> =
        ["resume", "killed", "--db", interrupted.db.to_str().unwrap()].map(String::from).to_vec();
    let output = llm2llm(&resume_args, None).await;
    assert!(output.status.success(), "final resume: {}", describe(&output));
    assert!(killed > 0, "at least one attempt was killed before it finished");

    let straight_pool = straight.pool().await;
    let interrupted_pool = interrupted.pool().await;
    let expected_examples = example_snapshot(&straight_pool, "killed").await;
    let actual_examples = example_snapshot(&interrupted_pool, "killed").await;
    let expected_predictions = prediction_snapshot(&straight_pool, "killed").await;
    let actual_predictions = prediction_snapshot(&interrupted_pool, "killed").await;
    assert_eq!(actual_examples, expected_examples, "examples after SIGKILLs and resumes");
    assert_eq!(actual_predictions, expected_predictions, "predictions after SIGKILLs and resumes");
}
