//! The teacher client against `llm2llm serve` on the tiny fixture model: an
//! offline checkpoint acting as the teacher. The fixture's weights are random,
//! so the text it writes is gibberish. The test checks only that the call
//! succeeds and is journaled with the server's finish reason and token counts.

#[path = "teacher_support/mod.rs"]
mod teacher_support;

mod serve_support;

use std::path::Path;

use llm2llm::teacher::{Purpose, Teacher};
use serve_support::ServeProcess;
use teacher_support::{open_db, requests_for, seed_run, test_config};

/// No test environment sets this, so the teacher sends no API key.
const UNSET_KEY_ENV: &str = "LLM2LLM_SERVE_TEST_UNSET_KEY";

/// Writes short prompt templates, because the fixture's context is 256
/// tokens and the shipped prompts alone are longer than that.
fn write_short_prompts(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let system = dir.join("system.md");
    let user = dir.join("user.md");
    std::fs::write(&system, "Write math problems.").expect("the temp dir is writable");
    std::fs::write(&user, "{{ question }}\nWrite {{ k }}.").expect("the temp dir is writable");
    (system, user)
}

#[tokio::test]
async fn teacher_call_to_served_model_is_journaled() {
    let server = ServeProcess::start(&["--model-name", "tiny-teacher"]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let pool = open_db(dir.path()).await;
    let (run_id, seed_ids) = seed_run(&pool, "serve-teacher", 1).await;
    let (system_prompt, user_prompt) = write_short_prompts(dir.path());
    let mut config = test_config(&server.base_url, UNSET_KEY_ENV);
    config.model = "tiny-teacher".to_owned();
    config.max_tokens = 16;
    config.timeout_secs = 60.0;
    config.system_prompt = system_prompt;
    config.user_prompt = user_prompt;
    let teacher = Teacher::new(config, pool.clone()).expect("valid teacher settings");

    let requests = requests_for(&pool, &seed_ids).await;
    let outcomes = teacher
        .augment(run_id, 0, Purpose::Llm2llm, requests)
        .await
        .unwrap_or_else(|err| panic!("the batch failed: {err}; log:\n{}", server.log()));

    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].error, None, "log:\n{}", server.log());
    assert!(!outcomes[0].from_journal);
    let (status, finish_reason, prompt_tokens, completion_tokens): (String, String, i64, i64) =
        sqlx::query_as(
            "SELECT status, finish_reason, prompt_tokens, completion_tokens \
             FROM teacher_calls WHERE id = ?",
        )
        .bind(outcomes[0].call_id)
        .fetch_one(&pool)
        .await
        .expect("the call is journaled");
    assert_eq!(status, "ok");
    assert!(
        finish_reason == "length" || finish_reason == "stop",
        "finish_reason {finish_reason}"
    );
    assert!(prompt_tokens > 0, "prompt_tokens {prompt_tokens}");
    assert!(
        (1..=16).contains(&completion_tokens),
        "completion_tokens {completion_tokens}"
    );
}
