//! Killing a process in the middle of a batch of teacher calls and starting
//! it again sends only the calls that had no response. The test runs its
//! own binary as a child process (the ignored test `resume_child_batch`),
//! kills it once some responses are journaled, and runs it again.

mod teacher_support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use llm2llm::teacher::{Purpose, Teacher};
use teacher_support::*;

const DB_ENV: &str = "LLM2LLM_TEST_RESUME_DB";
const URL_ENV: &str = "LLM2LLM_TEST_RESUME_URL";
const UNSET_KEY_ENV: &str = "LLM2LLM_TEST_TEACHER_KEY_UNSET";
const SEEDS: usize = 6;

/// The batch the child process runs: one call per seed example of the
/// first run in the database.
#[tokio::test]
#[ignore = "run as a child process by resumed_batch_requests_only_unanswered_calls"]
async fn resume_child_batch() {
    let db = std::env::var(DB_ENV).expect("the parent test sets the database path");
    let url = std::env::var(URL_ENV).expect("the parent test sets the server URL");
    let pool = llm2llm::store::open(std::path::Path::new(&db)).await.unwrap();
    let run_id: i64 = sqlx::query_scalar("SELECT id FROM runs ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let seeds: Vec<i64> = sqlx::query_scalar("SELECT id FROM examples WHERE kind = 'seed' ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut config = test_config(&url, UNSET_KEY_ENV);
    config.max_concurrent = SEEDS;
    config.timeout_secs = 5.0;
    let teacher = Teacher::new(config, pool.clone()).unwrap().with_backoff(fast_backoff()).unwrap();
    let outcomes = teacher
        .augment(run_id, 0, Purpose::Llm2llm, requests_for(&pool, &seeds).await)
        .await
        .unwrap();
    assert!(outcomes.iter().all(|outcome| outcome.error.is_none()));
}

fn child_command(db: &std::path::Path, url: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["resume_child_batch", "--exact", "--ignored", "--test-threads", "1"])
        .env(DB_ENV, db)
        .env(URL_ENV, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn seed_number(request: &SeenRequest) -> usize {
    let message = request.user_message();
    (0..SEEDS)
        .find(|index| message.contains(&format!("Seed question number {index}:")))
        .unwrap_or(usize::MAX)
}

async fn count_calls(pool: &sqlx::SqlitePool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM teacher_calls WHERE status = ?")
        .bind(status)
        .fetch_one(pool)
        .await
        .unwrap()
}

// Multi-threaded so the server keeps answering while this thread blocks
// waiting for the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_batch_requests_only_unanswered_calls() {
    // Until `answer_all` is set, seeds 0-2 are answered and 3-5 hang.
    let answer_all = Arc::new(AtomicBool::new(false));
    let answer_all_in_server = Arc::clone(&answer_all);
    let server = ScriptedServer::start(move |request, _| {
        let seed = seed_number(request);
        if seed < 3 || answer_all_in_server.load(Ordering::SeqCst) {
            completion(&two_good_items(&format!("Tag{seed}")), "stop")
        } else {
            Reply::Hang
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let pool = llm2llm::store::open(&db).await.unwrap();
    seed_run(&pool, "resume", SEEDS).await;

    let mut child: Child = child_command(&db, &server.base_url()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_calls(&pool, "ok").await < 3 || server.request_count() < SEEDS {
        assert!(Instant::now() < deadline, "the child never journaled three responses");
        assert!(child.try_wait().unwrap().is_none(), "the child exited before it was killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(count_calls(&pool, "ok").await, 3);
    assert_eq!(count_calls(&pool, "pending").await, 3);

    answer_all.store(true, Ordering::SeqCst);
    let before_restart = server.request_count();
    let output = child_command(&db, &server.base_url()).output().unwrap();
    assert!(
        output.status.success(),
        "the resumed child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let mut resent: Vec<usize> = server.seen()[before_restart..].iter().map(seed_number).collect();
    resent.sort();
    assert_eq!(resent, [3, 4, 5]);
    assert_eq!(count_calls(&pool, "ok").await, SEEDS as i64);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM teacher_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, SEEDS as i64);
}
