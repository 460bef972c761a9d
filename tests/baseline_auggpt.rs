//! AugGPT baseline against a scripted OpenAI-compatible server on
//! 127.0.0.1: rephrasings keep their seed's answer, every request goes
//! through the teacher journal, a resumed augment phase sends no answered
//! request again, and rejected rephrasings are asked for again.

#[path = "baseline_support/mod.rs"]
mod baseline_support;
#[path = "teacher_support/mod.rs"]
mod teacher_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use baseline_support::{
    SEEDS, answer_of, generated, open_db, phase_status, run_with_seeds, settings,
};
use llm2llm::baseline::generate::{AugGptTeacher, generate_examples};
use llm2llm::baseline::{AUGMENT_ITERATION, MatchedRun, Method};
use llm2llm::teacher::Teacher;
use sqlx::SqlitePool;
use teacher_support::{
    Reply, ScriptedServer, SeenRequest, api_error, completion, fast_backoff, test_config,
};

/// The seed question of a rephrasing request.
fn original_question(request: &SeenRequest) -> String {
    let user = request.user_message();
    user.lines()
        .find_map(|line| line.strip_prefix("Original problem: "))
        .unwrap_or_default()
        .to_string()
}

/// The sampling seed of a request: the configured seed (7) plus the sample
/// index.
fn sampling_seed(request: &SeenRequest) -> i64 {
    request.body["seed"].as_i64().unwrap_or(-1)
}

/// Two rephrasings of the request's question that differ from it and from
/// each other, and from those of other sampling seeds.
fn two_rephrasings(request: &SeenRequest) -> Reply {
    let question = original_question(request);
    let seed = sampling_seed(request);
    completion(
        &format!(
            "Question 1: Put another way, in take {seed}: {question}\n\
             Question 2: Here is the same situation told differently (take {seed}), so {question}"
        ),
        "stop",
    )
}

async fn teacher_for(server: &ScriptedServer, pool: &SqlitePool) -> Teacher {
    let mut config = test_config(&server.base_url(), "LLM2LLM_TEST_UNSET_KEY");
    config.examples_per_call = 2;
    config.max_concurrent = 1;
    Teacher::new(config, pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap()
}

async fn run_auggpt(
    pool: &SqlitePool,
    run_id: i64,
    teacher: &Teacher,
    per_example: usize,
    matched: Option<MatchedRun>,
) -> anyhow::Result<usize> {
    let settings = settings(Method::AugGpt, per_example, matched);
    let teacher = AugGptTeacher {
        client: teacher,
        batch_size: 1,
        rouge_threshold: 0.95,
    };
    generate_examples(pool, run_id, &settings, Some(teacher)).await
}

#[tokio::test]
async fn rephrasings_keep_the_seed_answer() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, _) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    let server = ScriptedServer::start(|request, _| two_rephrasings(request)).await;

    let count = run_auggpt(&pool, run_id, &teacher_for(&server, &pool).await, 2, None)
        .await
        .unwrap();

    assert_eq!(count, 2 * SEEDS.len());
    for (parent, question, answer, _, method, iteration) in generated(&pool, run_id).await {
        assert_eq!(answer, answer_of(&pool, parent).await, "{question}");
        assert_eq!(method, "auggpt");
        assert_eq!(iteration, AUGMENT_ITERATION);
    }
}

#[tokio::test]
async fn rephrasing_requests_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, _) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    let server = ScriptedServer::start(|request, _| two_rephrasings(request)).await;

    run_auggpt(&pool, run_id, &teacher_for(&server, &pool).await, 2, None)
        .await
        .unwrap();

    let calls: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT id, purpose, status, iteration FROM teacher_calls WHERE run_id = ? ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(calls.len(), server.request_count());
    assert_eq!(calls.len(), SEEDS.len());
    for (_, purpose, status, iteration) in &calls {
        assert_eq!(purpose, "auggpt");
        assert_eq!(status, "ok");
        assert_eq!(*iteration, AUGMENT_ITERATION);
    }
    let call_ids: Vec<i64> = calls.iter().map(|call| call.0).collect();
    for (_, question, _, call_id, _, _) in generated(&pool, run_id).await {
        assert!(
            call_id.is_some_and(|id| call_ids.contains(&id)),
            "{question} has call {call_id:?}"
        );
    }
}

#[tokio::test]
async fn resumed_phase_sends_no_answered_request_again() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, _) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    // The third request gets a 401, which stops the batch like a crash
    // would; after the "restart" the server answers everything.
    let broken = Arc::new(AtomicBool::new(true));
    let broken_in_server = Arc::clone(&broken);
    let server = ScriptedServer::start(move |request, number| {
        if number == 2 && broken_in_server.load(Ordering::SeqCst) {
            api_error(401, "invalid key")
        } else {
            two_rephrasings(request)
        }
    })
    .await;

    let first = run_auggpt(&pool, run_id, &teacher_for(&server, &pool).await, 2, None).await;
    assert!(first.is_err(), "the 401 should stop the augment phase");
    assert_eq!(
        phase_status(&pool, run_id, AUGMENT_ITERATION, "augment")
            .await
            .as_deref(),
        Some("failed")
    );
    assert!(generated(&pool, run_id).await.is_empty());

    broken.store(false, Ordering::SeqCst);
    let count = run_auggpt(&pool, run_id, &teacher_for(&server, &pool).await, 2, None)
        .await
        .unwrap();
    assert_eq!(count, 2 * SEEDS.len());
    assert_eq!(
        phase_status(&pool, run_id, AUGMENT_ITERATION, "augment")
            .await
            .as_deref(),
        Some("done")
    );

    // Each request body was answered with a 200 once: the two calls
    // answered before the 401 came from the journal the second time.
    let mut answered: HashMap<String, usize> = HashMap::new();
    for (number, request) in server.seen().iter().enumerate() {
        if number != 2 {
            *answered.entry(request.body.to_string()).or_default() += 1;
        }
    }
    assert_eq!(server.request_count(), SEEDS.len() + 1);
    assert!(answered.values().all(|&n| n == 1), "{answered:?}");

    // The resumed run ends with what an uninterrupted run records.
    let other_dir = tempfile::tempdir().unwrap();
    let other_pool = open_db(other_dir.path()).await;
    let (other_run, _) = run_with_seeds(&other_pool, "auggpt", "auggpt").await;
    let clean_server = ScriptedServer::start(|request, _| two_rephrasings(request)).await;
    run_auggpt(
        &other_pool,
        other_run,
        &teacher_for(&clean_server, &other_pool).await,
        2,
        None,
    )
    .await
    .unwrap();
    let questions = |rows: Vec<(i64, String, String, Option<i64>, String, i64)>| {
        rows.into_iter().map(|row| row.1).collect::<Vec<_>>()
    };
    assert_eq!(
        questions(generated(&pool, run_id).await),
        questions(generated(&other_pool, other_run).await)
    );
}

#[tokio::test]
async fn finished_phase_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, _) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    let server = ScriptedServer::start(|request, _| two_rephrasings(request)).await;
    let teacher = teacher_for(&server, &pool).await;

    run_auggpt(&pool, run_id, &teacher, 2, None).await.unwrap();
    let requests = server.request_count();
    let count = run_auggpt(&pool, run_id, &teacher, 2, None).await.unwrap();

    assert_eq!(server.request_count(), requests);
    assert_eq!(count, 2 * SEEDS.len());
}

#[tokio::test]
async fn rejected_rephrasings_are_requested_again() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, _) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    // Sample 0 returns one usable rephrasing and one copy of the seed
    // question; sample 1 returns two usable ones.
    let server = ScriptedServer::start(|request, _| {
        if sampling_seed(request) == 7 {
            let question = original_question(request);
            completion(
                &format!("Question 1: Put another way: {question}\nQuestion 2: {question}"),
                "stop",
            )
        } else {
            two_rephrasings(request)
        }
    })
    .await;

    let count = run_auggpt(&pool, run_id, &teacher_for(&server, &pool).await, 2, None)
        .await
        .unwrap();

    assert_eq!(count, 2 * SEEDS.len());
    assert_eq!(server.request_count(), 2 * SEEDS.len());
    let near_copies: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rejected_items WHERE run_id = ? AND reason = 'near_copy'",
    )
    .bind(run_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(near_copies, SEEDS.len() as i64);
}

#[tokio::test]
async fn matched_total_is_reached_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seed_ids) = run_with_seeds(&pool, "auggpt", "auggpt").await;
    let server = ScriptedServer::start(|request, _| two_rephrasings(request)).await;
    let matched = MatchedRun {
        id: 99,
        name: "llm2llm-run".to_string(),
        generated: 5,
    };

    let count = run_auggpt(
        &pool,
        run_id,
        &teacher_for(&server, &pool).await,
        2,
        Some(matched),
    )
    .await
    .unwrap();

    assert_eq!(count, 5);
    let rows = generated(&pool, run_id).await;
    let per_seed: Vec<usize> = seed_ids
        .iter()
        .map(|id| rows.iter().filter(|row| row.0 == *id).count())
        .collect();
    assert_eq!(per_seed, vec![2, 2, 1]);
}
