//! The teacher journal in the run database: one `teacher_calls` row per
//! logical request, one `teacher_attempts` row per HTTP attempt, and
//! `rejected_items` for items that failed parsing or checks.
//!
//! A request is identified by `request_key`, a SHA-256 over the model,
//! sampling settings, messages, seed example id and sample index. The
//! response is written as soon as it arrives, before parsing, so an
//! interrupted run never pays for it twice. Every function takes an
//! executor so callers can group writes in a transaction.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, SqliteExecutor};

use super::client::{AttemptRecord, ChatReply, SamplingSettings};
use super::prompt::RenderedPrompt;

/// Everything that makes two requests the same request.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    settings: &'a SamplingSettings,
    system: &'a str,
    user: &'a str,
    seed_example_id: i64,
    sample_index: u32,
}

/// Hex SHA-256 of the canonical JSON of the request's identity.
pub fn request_key(
    settings: &SamplingSettings,
    prompt: &RenderedPrompt,
    seed_example_id: i64,
    sample_index: u32,
) -> String {
    let material = KeyMaterial {
        settings,
        system: &prompt.system,
        user: &prompt.user,
        seed_example_id,
        sample_index,
    };
    // Serialising a struct of plain fields cannot fail.
    let json = serde_json::to_vec(&material).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A `teacher_calls` row as far as resuming needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRow {
    pub id: i64,
    pub run_id: i64,
    pub status: String,
    pub attempts: i64,
    pub response_text: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub parse_json: Option<String>,
}

/// The columns of `CallRow`, as a literal so queries stay static strings.
macro_rules! call_columns {
    () => {
        "id, run_id, status, attempts, response_text, finish_reason, prompt_tokens, \
         completion_tokens, latency_ms, parse_json"
    };
}

/// The newest row of this run with `request_key`, whatever its status.
pub async fn find_in_run(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
    request_key: &str,
) -> Result<Option<CallRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        call_columns!(),
        " FROM teacher_calls WHERE run_id = ? AND request_key = ? ORDER BY id DESC LIMIT 1"
    ))
    .bind(run_id)
    .bind(request_key)
    .fetch_optional(executor)
    .await
}

/// The oldest answered row with `request_key` anywhere in the database.
pub async fn find_answered(
    executor: impl SqliteExecutor<'_>,
    request_key: &str,
) -> Result<Option<CallRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        call_columns!(),
        " FROM teacher_calls WHERE request_key = ? AND status = 'ok' ORDER BY id LIMIT 1"
    ))
    .bind(request_key)
    .fetch_optional(executor)
    .await
}

/// Identity of a new call row.
#[derive(Debug, Clone)]
pub struct NewCall<'a> {
    pub run_id: i64,
    pub iteration: i64,
    pub purpose: &'a str,
    pub seed_example_id: i64,
    pub sample_index: u32,
    pub request_key: &'a str,
    pub model: &'a str,
    pub base_url: &'a str,
    pub request_json: &'a str,
}

/// Inserts a pending call and returns its id.
pub async fn insert_pending(
    executor: impl SqliteExecutor<'_>,
    call: &NewCall<'_>,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query_scalar(
        "INSERT INTO teacher_calls (run_id, iteration, purpose, seed_example_id, sample_index, \
         request_key, model, base_url, request_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(call.run_id)
    .bind(call.iteration)
    .bind(call.purpose)
    .bind(call.seed_example_id)
    .bind(i64::from(call.sample_index))
    .bind(call.request_key)
    .bind(call.model)
    .bind(call.base_url)
    .bind(call.request_json)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

/// Inserts an answered call copied from another run's journal. It records
/// `attempts = 0` because this run made no HTTP request, so it adds nothing
/// to this run's cost.
pub async fn insert_copy(
    executor: impl SqliteExecutor<'_>,
    call: &NewCall<'_>,
    answered: &CallRow,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query_scalar(
        "INSERT INTO teacher_calls (run_id, iteration, purpose, seed_example_id, sample_index, \
         request_key, model, base_url, request_json, status, response_text, finish_reason, \
         prompt_tokens, completion_tokens, latency_ms, attempts, finished_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?, 0, \
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) RETURNING id",
    )
    .bind(call.run_id)
    .bind(call.iteration)
    .bind(call.purpose)
    .bind(call.seed_example_id)
    .bind(i64::from(call.sample_index))
    .bind(call.request_key)
    .bind(call.model)
    .bind(call.base_url)
    .bind(call.request_json)
    .bind(&answered.response_text)
    .bind(&answered.finish_reason)
    .bind(answered.prompt_tokens)
    .bind(answered.completion_tokens)
    .bind(answered.latency_ms)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

/// Puts a failed call of an earlier session back to pending before it is
/// tried again.
pub async fn reopen(executor: impl SqliteExecutor<'_>, call_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE teacher_calls SET status = 'pending', error = NULL, finished_at = NULL WHERE id = ?")
        .bind(call_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Records one HTTP attempt and the call's attempt count, in one
/// transaction.
pub async fn record_attempt(
    pool: &sqlx::Pool<Sqlite>,
    call_id: i64,
    record: &AttemptRecord,
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO teacher_attempts (call_id, attempt, http_status, outcome, error, latency_ms, \
         retry_after_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(call_id)
    .bind(i64::from(record.attempt))
    .bind(record.http_status.map(i64::from))
    .bind(record.outcome)
    .bind(&record.error)
    .bind(record.latency.as_millis() as i64)
    .bind(record.retry_delay.map(|delay| delay.as_millis() as i64))
    .execute(&mut *transaction)
    .await?;
    sqlx::query("UPDATE teacher_calls SET attempts = ? WHERE id = ?")
        .bind(i64::from(record.attempt))
        .bind(call_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

/// Stores the reply and marks the call answered. Called before parsing.
pub async fn record_response(
    executor: impl SqliteExecutor<'_>,
    call_id: i64,
    reply: &ChatReply,
    latency_ms: i64,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE teacher_calls SET status = 'ok', response_text = ?, finish_reason = ?, \
         prompt_tokens = ?, completion_tokens = ?, latency_ms = ?, attempts = ?, error = NULL, \
         finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
    )
    .bind(&reply.text)
    .bind(&reply.finish_reason)
    .bind(reply.prompt_tokens)
    .bind(reply.completion_tokens)
    .bind(latency_ms)
    .bind(i64::from(attempts))
    .bind(call_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// Marks the call failed with its final error.
pub async fn record_failure(
    executor: impl SqliteExecutor<'_>,
    call_id: i64,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE teacher_calls SET status = 'failed', error = ?, attempts = ?, \
         finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
    )
    .bind(error)
    .bind(i64::from(attempts))
    .bind(call_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// A rejected item to record.
#[derive(Debug, Clone)]
pub struct RejectedItem<'a> {
    pub run_id: i64,
    pub iteration: i64,
    pub call_id: Option<i64>,
    pub seed_example_id: Option<i64>,
    pub reason: &'a str,
    pub text: &'a str,
}

/// Inserts one `rejected_items` row. Callers that reject items after the
/// teacher (the near-copy check) record them with this too.
pub async fn insert_rejected(
    executor: impl SqliteExecutor<'_>,
    item: &RejectedItem<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rejected_items (run_id, iteration, call_id, seed_example_id, reason, text) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(item.run_id)
    .bind(item.iteration)
    .bind(item.call_id)
    .bind(item.seed_example_id)
    .bind(item.reason)
    .bind(item.text)
    .execute(executor)
    .await?;
    Ok(())
}

/// Replaces the parse outcome of a call: its counts by reason and its
/// rejected items, in one transaction so that parsing a journaled reply
/// again (on resume) does not record the rejections twice.
pub async fn record_parse(
    pool: &sqlx::Pool<Sqlite>,
    call_id: i64,
    parse_json: &str,
    rejected: &[RejectedItem<'_>],
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM rejected_items WHERE call_id = ?")
        .bind(call_id)
        .execute(&mut *transaction)
        .await?;
    for item in rejected {
        insert_rejected(&mut *transaction, item).await?;
    }
    sqlx::query("UPDATE teacher_calls SET parse_json = ? WHERE id = ?")
        .bind(parse_json)
        .bind(call_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}

/// Token counts of the calls a run paid for (answered calls with at least
/// one HTTP attempt of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Sums the token counts of a run's paid calls, all iterations.
pub async fn run_usage(
    executor: impl SqliteExecutor<'_>,
    run_id: i64,
) -> Result<TokenUsage, sqlx::Error> {
    let (calls, prompt_tokens, completion_tokens): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) \
         FROM teacher_calls WHERE run_id = ? AND status = 'ok' AND attempts > 0",
    )
    .bind(run_id)
    .fetch_one(executor)
    .await?;
    Ok(TokenUsage {
        calls,
        prompt_tokens,
        completion_tokens,
    })
}
