//! The HTTP surface of `llm2llm serve` against a fake back end. Each test
//! starts the real router on 127.0.0.1. It calls it with reqwest to check raw
//! status codes and error bodies, or with async-openai to check that an
//! OpenAI client parses the responses.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs, FinishReason,
};
use llm2llm::serve::{AppState, Batcher, ChatBackend, ChatTemplate, router};
use llm2llm::student::{GenerateConfig, Generation};
use serde_json::{Value, json};

const MODEL_ID: &str = "tiny-test";

/// A back end that generates without a model: the completion is
/// `reply-<prompt length>`, one token per character, and it stops for
/// "length" when `max_new_tokens` is below that. Every call is recorded.
#[derive(Default)]
struct FakeBackend {
    calls: Mutex<Vec<(Vec<String>, GenerateConfig)>>,
    context_length: Option<usize>,
    fail_with: Option<String>,
    /// When set, each `generate` call first waits for a message on it.
    gate: Option<Mutex<mpsc::Receiver<()>>>,
    /// `generate` calls started, counted before waiting on the gate.
    started: AtomicUsize,
}

impl FakeBackend {
    fn calls(&self) -> Vec<(Vec<String>, GenerateConfig)> {
        self.calls.lock().expect("no test thread panicked").clone()
    }
}

impl ChatBackend for FakeBackend {
    fn generate(
        &self,
        prompts: &[String],
        config: &GenerateConfig,
    ) -> anyhow::Result<Vec<Generation>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.lock().expect("no test thread panicked").recv()?;
        }
        self.calls
            .lock()
            .expect("no test thread panicked")
            .push((prompts.to_vec(), config.clone()));
        if let Some(message) = &self.fail_with {
            anyhow::bail!("{message}");
        }
        let generations = prompts
            .iter()
            .map(|prompt| {
                let text = format!("reply-{}", prompt.len());
                let (text, finish_reason) = if text.len() > config.max_new_tokens {
                    (text[..config.max_new_tokens].to_string(), "length")
                } else {
                    (text, "eos")
                };
                Generation {
                    token_ids: vec![7; text.len()],
                    text,
                    finish_reason: finish_reason.to_string(),
                }
            })
            .collect();
        Ok(generations)
    }

    /// Counts one token per whitespace-separated word, plus bos.
    fn count_tokens(&self, prompt: &str) -> anyhow::Result<usize> {
        Ok(prompt.split_whitespace().count() + 1)
    }

    fn context_length(&self) -> Option<usize> {
        self.context_length
    }
}

/// A server on 127.0.0.1 with a random port, stopped when dropped.
struct TestServer {
    base_url: String,
    backend: Arc<FakeBackend>,
    batcher: Batcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(backend: FakeBackend) -> Self {
        Self::start_with_template(backend, ChatTemplate::fallback(true)).await
    }

    async fn start_with_template(backend: FakeBackend, template: ChatTemplate) -> Self {
        Self::start_with(backend, template, 16).await
    }

    async fn start_with(
        backend: FakeBackend,
        template: ChatTemplate,
        queue_capacity: usize,
    ) -> Self {
        let backend = Arc::new(backend);
        let batcher = Batcher::spawn(backend.clone(), 8, queue_capacity);
        let state = Arc::new(AppState {
            model_id: MODEL_ID.to_string(),
            template,
            backend: backend.clone(),
            batcher: batcher.clone(),
            default_max_tokens: 32,
            started_at: 1_700_000_000,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on loopback");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state))
                .await
                .expect("the test server runs");
        });
        Self {
            base_url: format!("http://{address}/v1"),
            backend,
            batcher,
            task,
        }
    }

    async fn post_chat(&self, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body)
            .send()
            .await
            .expect("the test server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("the body is JSON");
        (status, body)
    }

    fn openai(&self) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&self.base_url)
                .with_api_key("unused"),
        )
    }
}

fn user_chat(content: &str) -> Value {
    json!({"model": MODEL_ID, "messages": [{"role": "user", "content": content}]})
}

/// Asserts `body` is an OpenAI error with this type, and returns its fields.
fn error_fields(body: &Value) -> (&str, Option<&str>, Option<&str>) {
    let error = &body["error"];
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {body}"));
    assert!(!message.is_empty(), "empty error message in {body}");
    assert!(
        error.get("type").is_some_and(Value::is_string),
        "no error.type in {body}"
    );
    (
        error["type"].as_str().unwrap_or_default(),
        error["param"].as_str(),
        error["code"].as_str(),
    )
}

#[tokio::test]
async fn models_lists_served_model() {
    let server = TestServer::start(FakeBackend::default()).await;
    let body: Value = reqwest::get(format!("{}/models", server.base_url))
        .await
        .expect("the test server answers")
        .json()
        .await
        .expect("the body is JSON");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], MODEL_ID);
    assert_eq!(body["data"][0]["object"], "model");
}

#[tokio::test]
async fn completion_parses_in_async_openai() {
    let server = TestServer::start(FakeBackend::default()).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_ID)
        .messages::<[ChatCompletionRequestMessage; 2]>([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("Be brief.")
                .build()
                .expect("valid")
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("What is 2 + 3?")
                .build()
                .expect("valid")
                .into(),
        ])
        .temperature(0.7)
        .build()
        .expect("a valid request");
    let response = server
        .openai()
        .chat()
        .create(request)
        .await
        .expect("a completion");

    let prompt = "System: Be brief.\n\nUser: What is 2 + 3?\n\nAssistant:";
    let expected_text = format!("reply-{}", prompt.len());
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.model, MODEL_ID);
    assert!(response.id.starts_with("chatcmpl-"), "id {}", response.id);
    assert_eq!(response.choices.len(), 1);
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some(expected_text.as_str())
    );
    assert_eq!(response.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = response.usage.expect("usage is reported");
    assert_eq!(usage.prompt_tokens, 11);
    assert_eq!(usage.completion_tokens as usize, expected_text.len());
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    assert_eq!(server.backend.calls()[0].0, vec![prompt.to_string()]);
}

#[tokio::test]
async fn max_tokens_and_stop_reach_backend() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["max_tokens"] = json!(5);
    body["stop"] = json!(["###", "\n\n"]);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 200, "{response}");
    let calls = server.backend.calls();
    assert_eq!(calls[0].1.max_new_tokens, 5);
    assert_eq!(
        calls[0].1.stop,
        vec!["###".to_string(), "\n\n".to_string(), "\nUser:".to_string()]
    );
    assert_eq!(response["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn max_completion_tokens_wins_over_max_tokens() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["max_tokens"] = json!(5);
    body["max_completion_tokens"] = json!(9);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 200, "{response}");
    assert_eq!(server.backend.calls()[0].1.max_new_tokens, 9);
}

#[tokio::test]
async fn single_stop_string_accepted() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["stop"] = json!("END");
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 200, "{response}");
    assert_eq!(server.backend.calls()[0].1.stop[0], "END");
}

#[tokio::test]
async fn text_content_parts_are_joined() {
    let server = TestServer::start(FakeBackend::default()).await;
    let body = json!({
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is "},
            {"type": "text", "text": "2 + 3?"},
        ]}],
    });
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 200, "{response}");
    assert_eq!(
        server.backend.calls()[0].0[0],
        "User: What is 2 + 3?\n\nAssistant:"
    );
}

#[tokio::test]
async fn stream_true_rejected() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["stream"] = json!(true);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let (kind, param, _) = error_fields(&response);
    assert_eq!(kind, "invalid_request_error");
    assert_eq!(param, Some("stream"));
    assert!(server.backend.calls().is_empty());
}

#[tokio::test]
async fn n_above_one_rejected() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["n"] = json!(2);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let (kind, param, _) = error_fields(&response);
    assert_eq!(kind, "invalid_request_error");
    assert_eq!(param, Some("n"));
}

#[tokio::test]
async fn rejection_reads_as_api_error_in_async_openai() {
    let server = TestServer::start(FakeBackend::default()).await;
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL_ID)
        .messages([ChatCompletionRequestMessage::from(
            ChatCompletionRequestUserMessageArgs::default()
                .content("Hi")
                .build()
                .expect("valid"),
        )])
        .n(3)
        .build()
        .expect("a valid request");
    let err = server
        .openai()
        .chat()
        .create(request)
        .await
        .expect_err("n = 3 is rejected");

    let async_openai::error::OpenAIError::ApiError(api_error) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(api_error.api_error.param.as_deref(), Some("n"));
    assert!(
        api_error.api_error.message.contains("n = 1"),
        "{}",
        api_error.api_error.message
    );
}

#[tokio::test]
async fn unknown_model_returns_404() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["model"] = json!("gpt-4o");
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 404);
    let (_, _, code) = error_fields(&response);
    assert_eq!(code, Some("model_not_found"));
}

#[tokio::test]
async fn malformed_json_returns_400() {
    let server = TestServer::start(FakeBackend::default()).await;
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .expect("the test server answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("the body is JSON");

    assert_eq!(status, 400);
    let (kind, _, _) = error_fields(&body);
    assert_eq!(kind, "invalid_request_error");
}

#[tokio::test]
async fn missing_messages_field_returns_400() {
    let server = TestServer::start(FakeBackend::default()).await;
    let (status, response) = server.post_chat(json!({"model": MODEL_ID})).await;

    assert_eq!(status, 400);
    let (_, _, _) = error_fields(&response);
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("messages"), "{message}");
}

#[tokio::test]
async fn empty_messages_rejected() {
    let server = TestServer::start(FakeBackend::default()).await;
    let (status, response) = server
        .post_chat(json!({"model": MODEL_ID, "messages": []}))
        .await;

    assert_eq!(status, 400);
    let (_, param, _) = error_fields(&response);
    assert_eq!(param, Some("messages"));
}

#[tokio::test]
async fn tool_role_rejected() {
    let server = TestServer::start(FakeBackend::default()).await;
    let body = json!({"model": MODEL_ID, "messages": [{"role": "tool", "content": "42"}]});
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("messages[0].role `tool`"), "{message}");
}

#[tokio::test]
async fn too_many_stop_strings_rejected() {
    let server = TestServer::start(FakeBackend::default()).await;
    let mut body = user_chat("Hi");
    body["stop"] = json!(["a", "b", "c", "d", "e"]);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let (_, param, _) = error_fields(&response);
    assert_eq!(param, Some("stop"));
}

#[tokio::test]
async fn unknown_route_returns_404_error() {
    let server = TestServer::start(FakeBackend::default()).await;
    let response = reqwest::get(format!("{}/completions", server.base_url))
        .await
        .expect("the test server answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("the body is JSON");

    assert_eq!(status, 404);
    let (kind, _, _) = error_fields(&body);
    assert_eq!(kind, "invalid_request_error");
}

#[tokio::test]
async fn wrong_method_returns_405_error() {
    let server = TestServer::start(FakeBackend::default()).await;
    let response = reqwest::get(format!("{}/chat/completions", server.base_url))
        .await
        .expect("the test server answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("the body is JSON");

    assert_eq!(status, 405);
    let (kind, _, _) = error_fields(&body);
    assert_eq!(kind, "invalid_request_error");
}

#[tokio::test]
async fn request_beyond_context_rejected() {
    let backend = FakeBackend {
        context_length: Some(10),
        ..FakeBackend::default()
    };
    let server = TestServer::start(backend).await;
    let mut body = user_chat("one two three");
    body["max_tokens"] = json!(8);
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let (_, _, code) = error_fields(&response);
    assert_eq!(code, Some("context_length_exceeded"));
}

#[tokio::test]
async fn default_max_tokens_fits_context() {
    // The fallback prompt "User: one\n\nAssistant:" counts 3 words plus bos.
    let backend = FakeBackend {
        context_length: Some(10),
        ..FakeBackend::default()
    };
    let server = TestServer::start(backend).await;
    let (status, response) = server.post_chat(user_chat("one")).await;

    assert_eq!(status, 200, "{response}");
    assert_eq!(server.backend.calls()[0].1.max_new_tokens, 6);
}

#[tokio::test]
async fn backend_failure_returns_500() {
    let backend = FakeBackend {
        fail_with: Some("out of memory".to_string()),
        ..FakeBackend::default()
    };
    let server = TestServer::start(backend).await;
    let (status, response) = server.post_chat(user_chat("Hi")).await;

    assert_eq!(status, 500);
    let (kind, _, _) = error_fields(&response);
    assert_eq!(kind, "server_error");
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("out of memory"), "{message}");
}

#[tokio::test]
async fn queued_requests_share_one_batch() {
    let (open_gate, gate) = mpsc::channel();
    let backend = FakeBackend {
        gate: Some(Mutex::new(gate)),
        ..FakeBackend::default()
    };
    let server = Arc::new(TestServer::start(backend).await);

    // The first request occupies the worker inside `generate`; three more
    // queue behind it and must then be decoded together.
    let first = tokio::spawn({
        let server = Arc::clone(&server);
        async move { server.post_chat(user_chat("first")).await }
    });
    wait_until(|| server.backend.started.load(Ordering::SeqCst) == 1).await;
    let mut queued = Vec::new();
    for content in ["a", "b", "c"] {
        let server = Arc::clone(&server);
        queued.push(tokio::spawn(async move {
            server.post_chat(user_chat(content)).await
        }));
    }
    wait_until(|| server.batcher.pending() == 3).await;
    open_gate
        .send(())
        .expect("the fake back end waits on the gate");
    open_gate
        .send(())
        .expect("the fake back end waits on the gate");

    let (first_status, _) = first.await.expect("the request task finishes");
    assert_eq!(first_status, 200);
    for task in queued {
        let (status, body) = task.await.expect("the request task finishes");
        assert_eq!(status, 200, "{body}");
    }
    let batch_sizes: Vec<usize> = server
        .backend
        .calls()
        .iter()
        .map(|(prompts, _)| prompts.len())
        .collect();
    assert_eq!(batch_sizes, vec![1, 3]);
}

#[tokio::test]
async fn full_queue_returns_503() {
    let (open_gate, gate) = mpsc::channel();
    let backend = FakeBackend {
        gate: Some(Mutex::new(gate)),
        ..FakeBackend::default()
    };
    let server = Arc::new(TestServer::start_with(backend, ChatTemplate::fallback(true), 1).await);

    // One request inside `generate` and one in the single queue slot leave
    // no room for a third.
    let first = tokio::spawn({
        let server = Arc::clone(&server);
        async move { server.post_chat(user_chat("first")).await }
    });
    wait_until(|| server.backend.started.load(Ordering::SeqCst) == 1).await;
    let second = tokio::spawn({
        let server = Arc::clone(&server);
        async move { server.post_chat(user_chat("second")).await }
    });
    wait_until(|| server.batcher.pending() == 1).await;
    let (status, response) = server.post_chat(user_chat("third")).await;
    open_gate
        .send(())
        .expect("the fake back end waits on the gate");
    open_gate
        .send(())
        .expect("the fake back end waits on the gate");

    assert_eq!(status, 503);
    let (kind, _, _) = error_fields(&response);
    assert_eq!(kind, "server_error");
    let (first_status, _) = first.await.expect("the request task finishes");
    assert_eq!(first_status, 200);
    let (second_status, _) = second.await.expect("the request task finishes");
    assert_eq!(second_status, 200);
}

#[tokio::test]
async fn different_settings_use_separate_batches() {
    let (open_gate, gate) = mpsc::channel();
    let backend = FakeBackend {
        gate: Some(Mutex::new(gate)),
        ..FakeBackend::default()
    };
    let server = Arc::new(TestServer::start(backend).await);

    let first = tokio::spawn({
        let server = Arc::clone(&server);
        async move { server.post_chat(user_chat("first")).await }
    });
    wait_until(|| server.backend.started.load(Ordering::SeqCst) == 1).await;
    let mut queued = Vec::new();
    for max_tokens in [4, 4, 9] {
        let server = Arc::clone(&server);
        let mut body = user_chat("x");
        body["max_tokens"] = json!(max_tokens);
        queued.push(tokio::spawn(async move { server.post_chat(body).await }));
    }
    wait_until(|| server.batcher.pending() == 3).await;
    for _ in 0..3 {
        open_gate
            .send(())
            .expect("the fake back end waits on the gate");
    }

    first.await.expect("the request task finishes");
    for task in queued {
        task.await.expect("the request task finishes");
    }
    let batches: Vec<(usize, usize)> = server
        .backend
        .calls()
        .iter()
        .map(|(prompts, config)| (prompts.len(), config.max_new_tokens))
        .collect();
    assert_eq!(batches, vec![(1, 32), (2, 4), (1, 9)]);
}

#[tokio::test]
async fn checkpoint_chat_template_applied() {
    let checkpoint = tempfile::tempdir().expect("a temp dir");
    copy_fixture_model(checkpoint.path());
    write_llama2_template(checkpoint.path());
    let template = ChatTemplate::load(checkpoint.path(), true).expect("the template compiles");
    let server = TestServer::start_with_template(FakeBackend::default(), template).await;

    let body = json!({"model": MODEL_ID, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]});
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 200, "{response}");
    let calls = server.backend.calls();
    assert_eq!(
        calls[0].0[0],
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2 + 3? [/INST]"
    );
    assert!(
        calls[0].1.stop.is_empty(),
        "a template adds no stop strings: {:?}",
        calls[0].1.stop
    );
}

#[tokio::test]
async fn template_exception_returns_400() {
    let checkpoint = tempfile::tempdir().expect("a temp dir");
    copy_fixture_model(checkpoint.path());
    write_llama2_template(checkpoint.path());
    let template = ChatTemplate::load(checkpoint.path(), true).expect("the template compiles");
    let server = TestServer::start_with_template(FakeBackend::default(), template).await;

    let body = json!({"model": MODEL_ID, "messages": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]});
    let (status, response) = server.post_chat(body).await;

    assert_eq!(status, 400);
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("roles must alternate"), "{message}");
}

/// Polls `condition` every 10 ms, failing the test after 10 s.
async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 10 s");
}

/// Copies the tiny fixture checkpoint's files into `dir`.
fn copy_fixture_model(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/model");
    for entry in std::fs::read_dir(&fixture).expect("the fixture model exists") {
        let entry = entry.expect("a readable fixture entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("the fixture file copies");
    }
}

/// Adds a LLaMA-2-style chat template, written for these tests, to the
/// `tokenizer_config.json` in `dir`.
fn write_llama2_template(dir: &Path) {
    let template = concat!(
        "{% if messages[0]['role'] == 'system' %}",
        "{% set system = '<<SYS>>\\n' + messages[0]['content'].strip() + '\\n<</SYS>>\\n\\n' %}",
        "{% set turns = messages[1:] %}",
        "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}",
        "{% for message in turns %}",
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}",
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
        "{% endif %}",
        "{% if message['role'] == 'user' %}",
        "{{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'].strip() + ' [/INST]' }}",
        "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}",
        "{% endfor %}",
    );
    let path = dir.join("tokenizer_config.json");
    let text = std::fs::read_to_string(&path).expect("the fixture has a tokenizer_config.json");
    let mut config: Value =
        serde_json::from_str(&text).expect("the fixture's tokenizer_config.json is JSON");
    config["chat_template"] = json!(template);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&config).expect("JSON serializes"),
    )
    .expect("the temp tokenizer_config.json is writable");
}
