//! Shared helpers for the teacher tests: a scripted OpenAI-compatible
//! server on 127.0.0.1, a run database with seed examples, and a teacher
//! configuration with millisecond timeouts.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use llm2llm::teacher::{AugmentRequest, Backoff, TeacherConfig};
use sqlx::SqlitePool;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub body: serde_json::Value,
    pub authorization: Option<String>,
}

impl SeenRequest {
    /// The user message of the request.
    pub fn user_message(&self) -> String {
        self.body["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// What the server does with a request.
pub enum Reply {
    /// A response with this status, extra headers and body.
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answers.
    Hang,
    /// Sends the status line and headers, then drops the connection.
    Drop,
    /// Waits, then gives the inner reply.
    Delayed(Duration, Box<Reply>),
}

type Script = dyn Fn(&SeenRequest, usize) -> Reply + Send + Sync;

struct ServerState {
    script: Box<Script>,
    seen: Mutex<Vec<SeenRequest>>,
}

/// A chat-completions server whose replies a test scripts: the script gets
/// each request and its 0-based arrival number.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
}

impl ScriptedServer {
    pub async fn start(
        script: impl Fn(&SeenRequest, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(ServerState {
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = SeenRequest {
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        authorization: headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let number = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    let mut reply = (state.script)(&request, number);
    loop {
        match reply {
            Reply::Delayed(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Hang => {
                std::future::pending::<()>().await;
                unreachable!();
            }
            Reply::Drop => {
                let failing = futures::stream::once(async {
                    Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
                        "dropped by the test",
                    ))
                });
                return Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(failing))
                    .unwrap();
            }
            Reply::Raw {
                status,
                headers,
                body,
            } => {
                let mut builder = Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                return builder.body(Body::from(body)).unwrap();
            }
        }
    }
}

/// A 200 chat completion with `text` as the message content.
pub fn completion(text: &str, finish_reason: &str) -> Reply {
    let body = serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
    });
    Reply::Raw {
        status: 200,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// An OpenAI-style error body with `status`.
pub fn api_error(status: u16, message: &str) -> Reply {
    Reply::Raw {
        status,
        headers: Vec::new(),
        body: serde_json::json!({"error": {"message": message, "type": "test_error", "param": null, "code": null}})
            .to_string(),
    }
}

/// A reply with two valid problems, built around `tag` so replies differ.
pub fn two_good_items(tag: &str) -> String {
    format!(
        "Here are the new problems about {tag}.\n\n\
Question 1: {tag} has 3 boxes with 4 pens each. How many pens are there?\n\
Solution 1:\n\
There are 3*4 = <<3*4=12>>12 pens.\n\
#### 12\n\n\
Question 2: A {tag} tank holds 50 liters and loses 15. How many liters are left?\n\
Solution 2:\n\
50-15 = <<50-15=35>>35 liters are left.\n\
#### 35\n"
    )
}

/// A run with `seeds` seed examples; returns the run id and the seed ids.
pub async fn seed_run(pool: &SqlitePool, name: &str, seeds: usize) -> (i64, Vec<i64>) {
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (name, method, config_json, seed_path, seed_sha256) \
         VALUES (?, 'llm2llm', '{}', 'seed.jsonl', 'abc') RETURNING id",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap();
    let mut ids = Vec::new();
    for index in 0..seeds {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO examples (run_id, kind, question, answer, source_line) \
             VALUES (?, 'seed', ?, ?, ?) RETURNING id",
        )
        .bind(run_id)
        .bind(format!(
            "Seed question number {index}: Ann has {index} apples and buys 2 more. How many?"
        ))
        .bind(format!(
            "{index}+2 = <<{index}+2={}>>{}\n#### {}",
            index + 2,
            index + 2,
            index + 2
        ))
        .bind(index as i64 + 1)
        .fetch_one(pool)
        .await
        .unwrap();
        ids.push(id);
    }
    (run_id, ids)
}

/// Requests for the given seed examples, reading their text from the
/// database.
pub async fn requests_for(pool: &SqlitePool, seed_ids: &[i64]) -> Vec<AugmentRequest> {
    let mut requests = Vec::new();
    for &id in seed_ids {
        let (question, answer): (String, String) =
            sqlx::query_as("SELECT question, answer FROM examples WHERE id = ?")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap();
        requests.push(AugmentRequest {
            seed_example_id: id,
            question,
            answer,
            student_output: Some("#### 1".to_owned()),
            sample_index: 0,
        });
    }
    requests
}

/// Opens a fresh run database in `dir`.
pub async fn open_db(dir: &Path) -> SqlitePool {
    llm2llm::store::open(&dir.join("run.db")).await.unwrap()
}

/// Teacher settings for `base_url` with short timeouts, the prompts from
/// `configs/prompts/` and `api_key_env` naming the key variable.
pub fn test_config(base_url: &str, api_key_env: &str) -> TeacherConfig {
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prompts");
    TeacherConfig {
        base_url: base_url.to_owned(),
        model: "test-model".to_owned(),
        api_key_env: api_key_env.to_owned(),
        temperature: 0.7,
        top_p: 1.0,
        max_tokens: 512,
        seed: Some(7),
        timeout_secs: 2.0,
        max_attempts: 4,
        max_concurrent: 4,
        requests_per_minute: 0,
        tokens_per_minute: 0,
        price_prompt_per_million: 1.0,
        price_completion_per_million: 2.0,
        examples_per_call: 2,
        show_student_answer: true,
        system_prompt: prompts.join("llm2llm_system.md"),
        user_prompt: prompts.join("llm2llm_user.md"),
        rouge_threshold: 0.95,
    }
}

/// Millisecond backoff so retry tests stay fast.
pub fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

/// `teacher_attempts` rows of a call: (attempt, http_status, outcome,
/// retry_after_ms).
pub async fn attempts_of(
    pool: &SqlitePool,
    call_id: i64,
) -> Vec<(i64, Option<i64>, String, Option<i64>)> {
    sqlx::query_as(
        "SELECT attempt, http_status, outcome, retry_after_ms FROM teacher_attempts \
         WHERE call_id = ? ORDER BY attempt",
    )
    .bind(call_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Status, attempts and error of a call.
pub async fn call_status(pool: &SqlitePool, call_id: i64) -> (String, i64, Option<String>) {
    sqlx::query_as("SELECT status, attempts, error FROM teacher_calls WHERE id = ?")
        .bind(call_id)
        .fetch_one(pool)
        .await
        .unwrap()
}
