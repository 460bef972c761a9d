//! The teacher against a scripted OpenAI-compatible server on 127.0.0.1:
//! success, retries (429 with Retry-After, 5xx, timeouts, dropped
//! connections), errors that stop the batch, and replies that parse badly.
//! Each test checks what the journal recorded.

mod teacher_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use llm2llm::teacher::{Purpose, Teacher, TeacherError};
use teacher_support::*;

/// No test sets this variable, so requests go out without a key.
const UNSET_KEY_ENV: &str = "LLM2LLM_TEST_TEACHER_KEY_UNSET";

async fn teacher_for(server: &ScriptedServer, pool: &sqlx::SqlitePool) -> Teacher {
    Teacher::new(test_config(&server.base_url(), UNSET_KEY_ENV), pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap()
}

#[tokio::test]
async fn success_is_journaled_and_reused() {
    let server = ScriptedServer::start(|_, _| completion(&two_good_items("Mia"), "stop")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "success", 2).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].items.len(), 2);
    assert_eq!(
        outcomes[0].items[0].answer,
        "There are 3*4 = <<3*4=12>>12 pens.\n#### 12"
    );
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.error.is_none() && !outcome.from_journal)
    );

    let (status, response, finish, prompt_tokens, completion_tokens, parse_json, request_json): (
        String,
        String,
        String,
        i64,
        i64,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT status, response_text, finish_reason, prompt_tokens, completion_tokens, parse_json, \
         request_json FROM teacher_calls WHERE id = ?",
    )
    .bind(outcomes[0].call_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "ok");
    assert!(response.contains("Question 1: Mia has 3 boxes"));
    assert_eq!(finish, "stop");
    assert_eq!((prompt_tokens, completion_tokens), (120, 80));
    assert_eq!(parse_json, r#"{"items":2,"rejected":{}}"#);
    assert!(request_json.contains("\"model\":\"test-model\""));
    assert!(request_json.contains("Seed question number 0"));
    assert_eq!(
        attempts_of(&pool, outcomes[0].call_id).await,
        vec![(1, Some(200), "ok".to_owned(), None)]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer"));

    // The same batch again comes from the journal: no new request.
    let again = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert_eq!(server.request_count(), 2);
    assert!(again.iter().all(|outcome| outcome.from_journal));
    assert_eq!(again[1].items, outcomes[1].items);
    assert_eq!(again[1].call_id, outcomes[1].call_id);

    let usage = teacher.usage(run_id).await.unwrap();
    assert_eq!(
        (usage.calls, usage.prompt_tokens, usage.completion_tokens),
        (2, 240, 160)
    );
    let cost = teacher.config().cost(&usage);
    assert!(
        (cost - (240.0 * 1.0 + 160.0 * 2.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let server = ScriptedServer::start(|_, number| match number {
        0 => Reply::Raw {
            status: 429,
            headers: vec![("retry-after", "1".to_owned())],
            body:
                r#"{"error":{"message":"slow down","type":"rate_limit","param":null,"code":null}}"#
                    .to_owned(),
        },
        _ => completion(&two_good_items("Leo"), "stop"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "rate", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let started = std::time::Instant::now();
    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(outcomes[0].items.len(), 2);
    assert_eq!(
        attempts_of(&pool, outcomes[0].call_id).await,
        vec![
            (1, Some(429), "retry".to_owned(), Some(1000)),
            (2, Some(200), "ok".to_owned(), None)
        ]
    );
    assert_eq!(
        call_status(&pool, outcomes[0].call_id).await,
        ("ok".to_owned(), 2, None)
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = ScriptedServer::start(|_, number| match number {
        0 | 1 => Reply::Raw {
            status: 500,
            headers: Vec::new(),
            body: "<html>internal error</html>".to_owned(),
        },
        _ => completion(&two_good_items("Ivy"), "stop"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "server-errors", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert_eq!(outcomes[0].items.len(), 2);
    assert_eq!(server.request_count(), 3);
    let attempts = attempts_of(&pool, outcomes[0].call_id).await;
    let statuses: Vec<_> = attempts.iter().map(|row| (row.1, row.2.as_str())).collect();
    assert_eq!(
        statuses,
        [
            (Some(500), "retry"),
            (Some(500), "retry"),
            (Some(200), "ok")
        ]
    );
    assert!(
        attempts[0].3.is_some_and(|delay| delay > 0),
        "backoff delay not journaled"
    );
    assert_eq!(
        call_status(&pool, outcomes[0].call_id).await,
        ("ok".to_owned(), 3, None)
    );
}

#[tokio::test]
async fn timeouts_fail_the_call_not_the_batch() {
    // The first seed's requests never get an answer; the second's do.
    let server = ScriptedServer::start(|request, _| {
        if request.user_message().contains("Seed question number 0") {
            Reply::Hang
        } else {
            completion(&two_good_items("Zoe"), "stop")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "timeout", 2).await;
    let mut config = test_config(&server.base_url(), UNSET_KEY_ENV);
    config.timeout_secs = 0.2;
    config.max_attempts = 2;
    let teacher = Teacher::new(config, pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap();

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    let error = outcomes[0].error.clone().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    assert!(error.contains("2 attempts"), "{error}");
    assert!(outcomes[0].items.is_empty());
    assert_eq!(outcomes[1].items.len(), 2);
    let attempts = attempts_of(&pool, outcomes[0].call_id).await;
    let outcomes_journaled: Vec<_> = attempts.iter().map(|row| (row.1, row.2.as_str())).collect();
    assert_eq!(outcomes_journaled, [(None, "retry"), (None, "fatal")]);
    let (status, attempt_count, journaled_error) = call_status(&pool, outcomes[0].call_id).await;
    assert_eq!((status.as_str(), attempt_count), ("failed", 2));
    assert_eq!(journaled_error, Some(error));
}

#[tokio::test]
async fn unauthorized_stops_without_retry() {
    let server = ScriptedServer::start(|_, _| api_error(401, "Incorrect API key provided")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "unauthorized", 3).await;
    let mut config = test_config(&server.base_url(), UNSET_KEY_ENV);
    config.max_concurrent = 1;
    let teacher = Teacher::new(config, pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap();

    let error = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, TeacherError::Api { .. }));
    let message = error.to_string();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains(UNSET_KEY_ENV), "{message}");
    assert!(message.contains("is not set"), "{message}");
    assert_eq!(server.request_count(), 1);

    let (call_id, status, journaled_error): (i64, String, String) =
        sqlx::query_as("SELECT id, status, error FROM teacher_calls WHERE status = 'failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(journaled_error, message);
    assert_eq!(
        attempts_of(&pool, call_id).await,
        vec![(1, Some(401), "fatal".to_owned(), None)]
    );
}

#[tokio::test]
async fn not_found_names_url_and_model() {
    let server = ScriptedServer::start(|_, _| Reply::Raw {
        status: 404,
        headers: Vec::new(),
        body: "404 page not found".to_owned(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "not-found", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let message = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(message.contains(&server.base_url()), "{message}");
    assert!(message.contains("`test-model`"), "{message}");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn bad_request_fails_only_that_call() {
    let server = ScriptedServer::start(|request, _| {
        if request.user_message().contains("Seed question number 1") {
            api_error(400, "max_tokens is too large")
        } else {
            completion(&two_good_items("Ben"), "stop")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "bad-request", 3).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    let error = outcomes[1].error.clone().unwrap_or_default();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(error.contains("max_tokens is too large"), "{error}");
    assert!(outcomes[0].error.is_none());
    assert!(outcomes[2].error.is_none());
    assert_eq!(server.request_count(), 3);
    assert_eq!(
        attempts_of(&pool, outcomes[1].call_id).await,
        vec![(1, Some(400), "fatal".to_owned(), None)]
    );
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let server = ScriptedServer::start(|_, number| match number {
        0 => Reply::Drop,
        _ => completion(&two_good_items("Kai"), "stop"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "dropped", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert_eq!(outcomes[0].items.len(), 2);
    let attempts = attempts_of(&pool, outcomes[0].call_id).await;
    let outcomes_journaled: Vec<_> = attempts.iter().map(|row| row.2.as_str()).collect();
    assert_eq!(outcomes_journaled, ["retry", "ok"]);
}

#[tokio::test]
async fn invalid_json_body_is_retried_then_fails() {
    let server = ScriptedServer::start(|_, _| Reply::Raw {
        status: 200,
        headers: Vec::new(),
        body: "{\"choices\": [".to_owned(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "invalid-json", 1).await;
    let mut config = test_config(&server.base_url(), UNSET_KEY_ENV);
    config.max_attempts = 2;
    let teacher = Teacher::new(config, pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap();

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    let error = outcomes[0].error.clone().unwrap_or_default();
    assert!(error.contains("invalid response body"), "{error}");
    assert_eq!(server.request_count(), 2);
    let (status, attempts, _) = call_status(&pool, outcomes[0].call_id).await;
    assert_eq!((status.as_str(), attempts), ("failed", 2));
}

#[tokio::test]
async fn truncated_reply_drops_the_cut_item() {
    let text = two_good_items("Eve");
    let cut = text[..text.len() - 25].to_owned();
    let server = ScriptedServer::start(move |_, _| completion(&cut, "length")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "truncated", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert_eq!(outcomes[0].items.len(), 1);
    assert_eq!(outcomes[0].rejected.len(), 1);
    assert_eq!(outcomes[0].rejected[0].0, "truncated");
    let (finish, parse_json): (String, String) =
        sqlx::query_as("SELECT finish_reason, parse_json FROM teacher_calls WHERE id = ?")
            .bind(outcomes[0].call_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(finish, "length");
    assert_eq!(parse_json, r#"{"items":1,"rejected":{"truncated":1}}"#);
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM rejected_items WHERE call_id = ?")
            .bind(outcomes[0].call_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(reasons, ["truncated"]);
}

#[tokio::test]
async fn malformed_replies_are_counted_by_reason() {
    // One reply of prose, one refusal, one empty.
    let server = ScriptedServer::start(|request, _| {
        let message = request.user_message();
        if message.contains("Seed question number 0") {
            completion("Sure, math is fun. Problems follow soon, probably.", "stop")
        } else if message.contains("Seed question number 1") {
            completion("I'm sorry, but I can't help with that request.", "stop")
        } else {
            completion("", "stop")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "malformed", 3).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    let reasons: Vec<&str> = outcomes
        .iter()
        .map(|outcome| outcome.rejected[0].0.as_str())
        .collect();
    assert_eq!(reasons, ["no_items", "refusal", "empty_reply"]);
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.items.is_empty() && outcome.error.is_none())
    );
    let journaled: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.status, r.reason FROM rejected_items r JOIN teacher_calls c ON c.id = r.call_id \
         ORDER BY r.seed_example_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let journaled_reasons: Vec<&str> = journaled.iter().map(|row| row.1.as_str()).collect();
    assert_eq!(journaled_reasons, ["no_items", "refusal", "empty_reply"]);
    assert!(journaled.iter().all(|row| row.0 == "ok"));
}

#[tokio::test]
async fn bad_annotation_rejects_only_that_item() {
    let reply = "Question 1: Sam has 3 boxes with 4 pens each. How many pens?\n\
Solution 1:\nHe has 3*4 = <<3*4=12>>12 pens.\n#### 12\n\n\
Question 2: A tank holds 50 liters and loses 15. How much is left?\n\
Solution 2:\n50-15 = <<50-15=45>>45 liters are left.\n#### 45\n\n\
Question 3: Ada reads 6 pages a day for 5 days. How many pages?\n\
Solution 3:\nShe reads 6*5 = <<6*5=30>>30 pages.\n#### 30\n";
    let server = ScriptedServer::start(move |_, _| completion(reply, "stop")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "annotation", 1).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    let questions: Vec<&str> = outcomes[0]
        .items
        .iter()
        .map(|item| item.question.as_str())
        .collect();
    assert_eq!(
        questions,
        [
            "Sam has 3 boxes with 4 pens each. How many pens?",
            "Ada reads 6 pages a day for 5 days. How many pages?"
        ]
    );
    assert_eq!(outcomes[0].rejected.len(), 1);
    assert_eq!(outcomes[0].rejected[0].0, "wrong_annotation");
    let (reason, text, seed): (String, String, i64) = sqlx::query_as(
        "SELECT reason, text, seed_example_id FROM rejected_items WHERE call_id = ?",
    )
    .bind(outcomes[0].call_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reason, "wrong_annotation");
    assert!(text.contains("<<50-15=45>>"));
    assert_eq!(seed, seeds[0]);
}

#[tokio::test]
async fn outcomes_follow_request_order() {
    // Earlier requests are answered later, so completion order is reversed.
    let server = ScriptedServer::start(|request, _| {
        let message = request.user_message();
        let index = (0..4)
            .find(|index| message.contains(&format!("Seed question number {index}:")))
            .unwrap_or(0);
        let delay = Duration::from_millis(200 - 50 * index as u64);
        Reply::Delayed(
            delay,
            Box::new(completion(&two_good_items(&format!("Tag{index}")), "stop")),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "order", 4).await;
    let teacher = teacher_for(&server, &pool).await;

    let outcomes = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    for (index, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.seed_example_id, seeds[index]);
        assert!(
            outcome.items[0]
                .question
                .starts_with(&format!("Tag{index} ")),
            "{:?}",
            outcome.items
        );
    }
}

#[tokio::test]
async fn failed_call_is_sent_again_by_next_batch() {
    let failing = Arc::new(AtomicUsize::new(1));
    let failing_in_server = Arc::clone(&failing);
    let server = ScriptedServer::start(move |_, _| {
        if failing_in_server.load(Ordering::SeqCst) == 1 {
            Reply::Raw {
                status: 503,
                headers: Vec::new(),
                body: "unavailable".to_owned(),
            }
        } else {
            completion(&two_good_items("Max"), "stop")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "failed-again", 1).await;
    let mut config = test_config(&server.base_url(), UNSET_KEY_ENV);
    config.max_attempts = 2;
    let teacher = Teacher::new(config, pool.clone())
        .unwrap()
        .with_backoff(fast_backoff())
        .unwrap();

    let first = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert!(first[0].error.is_some());
    failing.store(0, Ordering::SeqCst);
    let second = teacher
        .augment(
            run_id,
            0,
            Purpose::Llm2llm,
            requests_for(&pool, &seeds).await,
        )
        .await
        .unwrap();
    assert!(second[0].error.is_none());
    assert_eq!(second[0].call_id, first[0].call_id);
    assert_eq!(
        call_status(&pool, second[0].call_id).await,
        ("ok".to_owned(), 3, None)
    );
    let attempt_numbers: Vec<i64> = attempts_of(&pool, second[0].call_id)
        .await
        .iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(attempt_numbers, [1, 2, 3]);
}

#[tokio::test]
async fn rephrase_purpose_keeps_seed_answers() {
    let server = ScriptedServer::start(|_, _| {
        completion(
            "Question 1: Ann owns some apples and gets 2 more; how many now?\n\
Question 2: After buying 2 more apples, how many apples does Ann have?",
            "stop",
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "auggpt", 1).await;
    let teacher = teacher_for(&server, &pool).await;
    let requests = requests_for(&pool, &seeds).await;
    let seed_answer = requests[0].answer.clone();

    let outcomes = teacher
        .augment(run_id, 0, Purpose::AugGpt, requests)
        .await
        .unwrap();
    assert_eq!(outcomes[0].items.len(), 2);
    assert!(
        outcomes[0]
            .items
            .iter()
            .all(|item| item.answer == seed_answer)
    );
    let purpose: String = sqlx::query_scalar("SELECT purpose FROM teacher_calls WHERE id = ?")
        .bind(outcomes[0].call_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(purpose, "auggpt");
    let seen = server.seen();
    assert!(
        seen[0]
            .user_message()
            .contains("Original problem: Seed question number 0")
    );
}

#[tokio::test]
async fn sample_index_changes_the_sampling_seed() {
    let server = ScriptedServer::start(|_, _| completion(&two_good_items("Sol"), "stop")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (run_id, seeds) = seed_run(&pool, "samples", 1).await;
    let teacher = teacher_for(&server, &pool).await;
    let mut requests = requests_for(&pool, &seeds).await;
    let mut second = requests[0].clone();
    second.sample_index = 1;
    requests.push(second);

    let outcomes = teacher
        .augment(run_id, 0, Purpose::Llm2llm, requests)
        .await
        .unwrap();
    assert_ne!(outcomes[0].call_id, outcomes[1].call_id);
    let mut seeds_sent: Vec<i64> = server
        .seen()
        .iter()
        .map(|request| request.body["seed"].as_i64().unwrap())
        .collect();
    seeds_sent.sort();
    assert_eq!(seeds_sent, [7, 8]);
}

#[tokio::test]
async fn answered_request_in_other_run_is_reused() {
    let server = ScriptedServer::start(|_, _| completion(&two_good_items("Una"), "stop")).await;
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let (first_run, seeds) = seed_run(&pool, "first", 2).await;
    let (second_run, _) = seed_run(&pool, "second", 0).await;
    let teacher = teacher_for(&server, &pool).await;
    let requests = requests_for(&pool, &seeds).await;

    let first = teacher
        .augment(first_run, 0, Purpose::Llm2llm, requests.clone())
        .await
        .unwrap();
    let second = teacher
        .augment(second_run, 0, Purpose::Llm2llm, requests)
        .await
        .unwrap();
    assert_eq!(server.request_count(), 2);
    assert!(second.iter().all(|outcome| outcome.from_journal));
    assert_eq!(second[0].items, first[0].items);
    assert_ne!(second[0].call_id, first[0].call_id);
    let (run_id, attempts): (i64, i64) =
        sqlx::query_as("SELECT run_id, attempts FROM teacher_calls WHERE id = ?")
            .bind(second[0].call_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((run_id, attempts), (second_run, 0));
    assert_eq!(teacher.usage(second_run).await.unwrap().calls, 0);
    assert_eq!(teacher.usage(first_run).await.unwrap().calls, 2);
}

#[tokio::test]
async fn invalid_settings_are_rejected_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_db(dir.path()).await;
    let mut config = test_config("http://127.0.0.1:9/v1", UNSET_KEY_ENV);
    config.max_attempts = 0;
    let message = Teacher::new(config, pool.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("max_attempts"), "{message}");

    let mut config = test_config("not a url", UNSET_KEY_ENV);
    config.max_attempts = 1;
    let message = Teacher::new(config, pool.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("base_url"), "{message}");

    let mut config = test_config("http://127.0.0.1:9/v1", UNSET_KEY_ENV);
    config.user_prompt = dir.path().join("missing.md");
    let error = Teacher::new(config, pool).err().unwrap();
    assert!(error.to_string().contains("missing.md"), "{error}");
}
