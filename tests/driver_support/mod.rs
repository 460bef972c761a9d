//! Shared pieces of the driver tests: a scripted OpenAI-compatible teacher
//! on 127.0.0.1, small GSM8K-style datasets, a tiny-model configuration, and
//! helpers that run the real `llm2llm` binary and read its database.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

/// Request bodies the scripted teacher received, by canonical JSON text.
type Seen = Arc<Mutex<BTreeMap<String, usize>>>;

/// An OpenAI-compatible chat server whose replies are a pure function of the
/// request, so an interrupted run and an uninterrupted one see the same
/// replies. Each reply holds two well-formed GSM8K-style items.
pub struct ScriptedTeacher {
    pub base_url: String,
    seen: Seen,
    server: tokio::task::JoinHandle<()>,
}

impl ScriptedTeacher {
    pub async fn start() -> ScriptedTeacher {
        let seen = Seen::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("scripted teacher server");
        });
        ScriptedTeacher { base_url: format!("http://{address}/v1"), seen, server }
    }

    /// Requests received in total.
    pub fn request_count(&self) -> usize {
        self.seen.lock().expect("seen lock").values().sum()
    }

    /// Request bodies received more than once, with their counts.
    pub fn repeated_requests(&self) -> Vec<(String, usize)> {
        let seen = self.seen.lock().expect("seen lock");
        seen.iter().filter(|(_, count)| **count > 1).map(|(body, count)| (body.clone(), *count)).collect()
    }
}

impl Drop for ScriptedTeacher {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "scripted", "object": "model", "created": 0, "owned_by": "test"}]}))
}

async fn chat(State(seen): State<Seen>, Json(request): Json<Value>) -> Json<Value> {
    // serde_json sorts object keys, so equal requests give equal text.
    let canonical = request.to_string();
    *seen.lock().expect("seen lock").entry(canonical.clone()).or_default() += 1;

    let digest = Sha256::digest(canonical.as_bytes());
    let content = scripted_reply(&digest);
    Json(json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 90, "total_tokens": 210}
    }))
}

/// Two numbered problems in the format the teacher's prompt asks for, with
/// names, objects and numbers drawn from `digest`.
fn scripted_reply(digest: &[u8]) -> String {
    const NAMES: [&str; 8] = ["Ava", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana"];
    const OBJECTS: [&str; 8] = ["apples", "marbles", "stickers", "books", "coins", "shells", "cards", "pencils"];
    let name = NAMES[digest[0] as usize % NAMES.len()];
    let first_object = OBJECTS[digest[1] as usize % OBJECTS.len()];
    let second_object = OBJECTS[digest[2] as usize % OBJECTS.len()];
    let a = 10 + u32::from(digest[3]) % 900;
    let b = 2 + u32::from(digest[4]) % 90;
    let per_box = 3 + u32::from(digest[5]) % 40;
    let boxes = 2 + u32::from(digest[6]) % 20;
    format!(
        "Here are the new problems.\n\n\
         Question 1: {name} has {a} {first_object}. A friend gives {name} {b} more {first_object}. \
         How many {first_object} does {name} have now?\n\
         Solution 1:\n\
         {name} has {a}+{b} = <<{a}+{b}={sum}>>{sum} {first_object}.\n\
         #### {sum}\n\n\
         Question 2: A box holds {per_box} {second_object}. How many {second_object} are in {boxes} boxes?\n\
         Solution 2:\n\
         There are {per_box}*{boxes} = <<{per_box}*{boxes}={product}>>{product} {second_object}.\n\
         #### {product}\n",
        sum = a + b,
        product = per_box * boxes,
    )
}

/// Seed problems with large answers, so the random tiny model cannot hit
/// one by accident.
pub const SEED_JSONL: &str = r#"{"question": "A farm has 1234 sheep and buys 1000 more. How many sheep does it have?", "answer": "It has 1234+1000 = <<1234+1000=2234>>2234 sheep.\n#### 2234"}
{"question": "A shop sells 457 pens on Monday and 619 on Tuesday. How many pens does it sell?", "answer": "It sells 457+619 = <<457+619=1076>>1076 pens.\n#### 1076"}
{"question": "Each crate holds 48 bottles. How many bottles are in 37 crates?", "answer": "There are 48*37 = <<48*37=1776>>1776 bottles.\n#### 1776"}
{"question": "A library had 3150 books and gave away 875. How many books are left?", "answer": "It has 3150-875 = <<3150-875=2275>>2275 books left.\n#### 2275"}
"#;

pub const TEST_JSONL: &str = r#"{"question": "A train carries 812 people and 391 more board. How many people are on it?", "answer": "There are 812+391 = <<812+391=1203>>1203 people.\n#### 1203"}
{"question": "A baker makes 64 trays of 29 rolls. How many rolls is that?", "answer": "That is 64*29 = <<64*29=1856>>1856 rolls.\n#### 1856"}
"#;

/// Number of lines of [`SEED_JSONL`].
pub const SEED_COUNT: usize = 4;
/// Number of lines of [`TEST_JSONL`].
pub const TEST_COUNT: usize = 2;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A work folder with the datasets and a config for the tiny fixture
/// student, tiny training settings and the scripted teacher at `base_url`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub seed: PathBuf,
    pub test: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
}

impl Workspace {
    pub fn new(base_url: &str, iterations: usize) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = dir.path().join("seed.jsonl");
        let test = dir.path().join("test.jsonl");
        std::fs::write(&seed, SEED_JSONL).expect("write seed");
        std::fs::write(&test, TEST_JSONL).expect("write test");
        let config = dir.path().join("tiny.toml");
        let text = format!(
            r#"[model]
dir = {model:?}

[lora]
r = 2
lora_alpha = 4.0
lora_dropout = 0.0
target_modules = ["q_proj", "v_proj"]

[train]
epochs = 1
micro_batch_size = 2
gradient_accumulation = 1
learning_rate = 1e-3
warmup_ratio = 0.0
max_seq_len = 192
seed = 7

[generate]
max_new_tokens = 6
stop = ["\nQuestion:"]
batch_size = 2

[teacher]
base_url = {base_url:?}
model = "scripted"
api_key_env = "LLM2LLM_TEST_UNSET_KEY"
timeout_secs = 20.0
max_attempts = 2
max_concurrent = 2
examples_per_call = 2
system_prompt = {system:?}
user_prompt = {user:?}

[run]
iterations = {iterations}
"#,
            model = repo_path("tests/fixtures/tiny-llama/model").display().to_string(),
            system = repo_path("configs/prompts/llm2llm_system.md").display().to_string(),
            user = repo_path("configs/prompts/llm2llm_user.md").display().to_string(),
        );
        std::fs::write(&config, text).expect("write config");
        let db = dir.path().join("runs").join("llm2llm.db");
        Workspace { dir, seed, test, config, db }
    }

    /// Arguments of `llm2llm run` for this workspace.
    pub fn run_args(&self, name: &str) -> Vec<String> {
        [
            "run",
            "--seed",
            path_str(&self.seed),
            "--test",
            path_str(&self.test),
            "--config",
            path_str(&self.config),
            "--db",
            path_str(&self.db),
            "--name",
            name,
        ]
        .map(String::from)
        .to_vec()
    }

    pub async fn pool(&self) -> SqlitePool {
        llm2llm::store::open(&self.db).await.expect("open the run database")
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs the `llm2llm` binary with `args`, setting `LLM2LLM_TEST_ABORT_AT`
/// when `abort_at` is given.
pub async fn llm2llm(args: &[String], abort_at: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm2llm"));
    command.args(args).env_remove("LLM2LLM_TEST_ABORT_AT").env("RUST_LOG", "llm2llm=info");
    if let Some(point) = abort_at {
        command.env("LLM2LLM_TEST_ABORT_AT", point);
    }
    command.output().await.expect("start the llm2llm binary")
}

pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Examples of a run in a form comparable across databases: generated
/// examples name their parent by source line, not by row id.
pub async fn example_snapshot(pool: &SqlitePool, run_name: &str) -> Vec<(String, String, String, Option<i64>, Option<i64>, i64)> {
    sqlx::query_as(
        "SELECT e.kind, e.question, e.answer, p.source_line, e.iteration, e.position
         FROM examples e JOIN runs r ON r.id = e.run_id LEFT JOIN examples p ON p.id = e.parent_id
         WHERE r.name = ? ORDER BY e.kind, e.iteration, e.position, e.source_line",
    )
    .bind(run_name)
    .fetch_all(pool)
    .await
    .expect("read examples")
}

/// Predictions of a run in a form comparable across databases.
pub async fn prediction_snapshot(
    pool: &SqlitePool,
    run_name: &str,
) -> Vec<(i64, String, Option<i64>, String, String, Option<String>, String, bool)> {
    sqlx::query_as(
        "SELECT p.iteration, e.kind, e.source_line, e.question, p.output, p.extracted, p.rule, p.correct
         FROM predictions p JOIN examples e ON e.id = p.example_id JOIN runs r ON r.id = p.run_id
         WHERE r.name = ? ORDER BY p.iteration, e.kind, e.source_line, e.iteration, e.position",
    )
    .bind(run_name)
    .fetch_all(pool)
    .await
    .expect("read predictions")
}
