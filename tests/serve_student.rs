//! `llm2llm serve` on the tiny fixture checkpoint, run as a child process
//! and called through async-openai as the teacher client calls a server.
//! The weights are random, so the text is gibberish: the tests check the
//! structure, the token counts, greedy determinism and shutdown.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestUserMessageArgs,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs, CreateChatCompletionResponse,
    FinishReason,
};

const MAX_TOKENS: u32 = 12;
const QUESTION: &str = "What is 2 + 3?";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny-llama")
        .join(name)
}

/// A running `llm2llm serve`; killed when dropped if the test did not stop it.
struct ServeProcess {
    child: Child,
    base_url: String,
    stderr: tempfile::NamedTempFile,
}

impl ServeProcess {
    /// Starts the server on a free loopback port and waits for the base URL
    /// it prints as its first stdout line.
    fn start(extra_args: &[&str]) -> Self {
        Self::start_model(&fixture("model"), extra_args)
    }

    fn start_model(model_dir: &Path, extra_args: &[&str]) -> Self {
        let stderr = tempfile::NamedTempFile::new().expect("a temp file for the server's log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm2llm"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--model"])
            .arg(model_dir)
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("the log file reopens"))
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = Self {
            child,
            base_url: String::new(),
            stderr,
        };
        server.base_url = server.read_base_url(stdout);
        server
    }

    fn read_base_url(&mut self, stdout: ChildStdout) -> String {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with("http://127.0.0.1:") => line.trim_end().to_string(),
            Ok(line) => panic!(
                "unexpected first stdout line {line:?}; log:\n{}",
                self.log()
            ),
            Err(_) => panic!("no address on stdout within 120 s; log:\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        let _ = self
            .stderr
            .reopen()
            .and_then(|mut file| file.read_to_string(&mut text));
        text
    }

    fn client(&self) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&self.base_url)
                .with_api_key("unused"),
        )
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat_request(model: &str, question: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestMessage::from(
            ChatCompletionRequestUserMessageArgs::default()
                .content(question)
                .build()
                .expect("valid"),
        )])
        .max_tokens(MAX_TOKENS)
        .build()
        .expect("a valid request")
}

async fn complete(server: &ServeProcess) -> CreateChatCompletionResponse {
    complete_question(server, "model", QUESTION).await
}

async fn complete_question(
    server: &ServeProcess,
    model: &str,
    question: &str,
) -> CreateChatCompletionResponse {
    match server
        .client()
        .chat()
        .create(chat_request(model, question))
        .await
    {
        Ok(response) => response,
        Err(err) => panic!("the chat completion failed: {err}; log:\n{}", server.log()),
    }
}

/// Tokens of `prompt` with bos, as the fixture's tokenizer encodes it.
fn token_count(prompt: &str) -> u32 {
    let tokenizer = tokenizers::Tokenizer::from_file(fixture("model").join("tokenizer.json"))
        .expect("the fixture tokenizer loads");
    let encoding = tokenizer.encode(prompt, true).expect("the prompt encodes");
    u32::try_from(encoding.len()).expect("a short prompt")
}

#[tokio::test]
async fn fixture_model_serves_well_formed_completion() {
    let server = ServeProcess::start(&[]);
    let response = complete(&server).await;

    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.model, "model");
    assert_eq!(response.choices.len(), 1);
    let choice = &response.choices[0];
    assert!(
        choice.message.content.is_some(),
        "no content in {response:?}"
    );
    let usage = response.usage.clone().expect("usage is reported");
    assert_eq!(
        usage.prompt_tokens,
        token_count(&format!("User: {QUESTION}\n\nAssistant:"))
    );
    assert!(usage.completion_tokens >= 1, "{usage:?}");
    assert!(usage.completion_tokens <= MAX_TOKENS, "{usage:?}");
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    match choice.finish_reason {
        Some(FinishReason::Length) => assert_eq!(usage.completion_tokens, MAX_TOKENS),
        Some(FinishReason::Stop) => {}
        other => panic!("unexpected finish_reason {other:?}"),
    }
}

#[tokio::test]
async fn greedy_output_repeats_across_calls() {
    let server = ServeProcess::start(&[]);
    let first = complete(&server).await;
    let second = complete(&server).await;

    assert_eq!(
        first.choices[0].message.content,
        second.choices[0].message.content
    );
    assert_eq!(first.usage, second.usage);
}

#[tokio::test]
async fn adapter_changes_output() {
    let base = ServeProcess::start(&[]);
    let adapter_path = fixture("adapter");
    let adapter_arg = adapter_path.to_str().expect("the fixture path is UTF-8");
    let tuned = ServeProcess::start(&["--adapter", adapter_arg]);
    let base_response = complete(&base).await;
    let tuned_response = complete(&tuned).await;

    // The fixture adapter has non-zero B on every projection, so greedy
    // decoding over a dozen tokens diverges from the base model's.
    assert_ne!(
        base_response.choices[0].message.content,
        tuned_response.choices[0].message.content
    );
}

#[tokio::test]
async fn ctrl_c_stops_server_cleanly() {
    let mut server = ServeProcess::start(&[]);
    complete(&server).await;
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    let mut exit = None;
    for _ in 0..200 {
        exit = server.child.try_wait().expect("the child can be polled");
        if exit.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exit =
        exit.unwrap_or_else(|| panic!("still running 10 s after SIGINT; log:\n{}", server.log()));
    assert!(exit.success(), "exit {exit:?}; log:\n{}", server.log());
}

#[tokio::test]
async fn concurrent_requests_match_sequential_ones() {
    let server = ServeProcess::start(&[]);
    let questions = [
        "What is 2 + 3?",
        "Tom has 7 apples and eats 2. How many are left?",
        "Hi",
    ];
    let mut sequential = Vec::new();
    for question in questions {
        let response = complete_question(&server, "model", question).await;
        sequential.push(response.choices[0].message.content.clone());
    }

    // Sent together, the requests may share one padded batch; greedy output
    // must not depend on what a prompt was batched with.
    let concurrent = futures::future::join_all(
        questions
            .iter()
            .map(|question| complete_question(&server, "model", question)),
    )
    .await;
    for (index, response) in concurrent.iter().enumerate() {
        assert_eq!(
            response.choices[0].message.content, sequential[index],
            "question {index}"
        );
    }
}

#[tokio::test]
async fn checkpoint_template_prompt_has_one_bos() {
    let checkpoint = tempfile::tempdir().expect("a temp dir");
    for entry in std::fs::read_dir(fixture("model")).expect("the fixture model exists") {
        let entry = entry.expect("a readable fixture entry");
        std::fs::copy(entry.path(), checkpoint.path().join(entry.file_name()))
            .expect("the fixture file copies");
    }
    write_llama2_template(checkpoint.path());
    let server = ServeProcess::start_model(checkpoint.path(), &["--model-name", "tiny-chat"]);
    let response = complete_question(&server, "tiny-chat", QUESTION).await;

    // The template writes `<s>` and the tokenizer prepends bos too; the
    // server drops the template's copy, so the count matches one bos.
    let usage = response.usage.expect("usage is reported");
    assert_eq!(
        usage.prompt_tokens,
        token_count(&format!("[INST] {QUESTION} [/INST]"))
    );
    assert_eq!(response.model, "tiny-chat");
}

/// Adds a LLaMA-2-style chat template, written for these tests, to the
/// `tokenizer_config.json` in `dir`.
fn write_llama2_template(dir: &Path) {
    let template = concat!(
        "{% for message in messages %}",
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}",
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
        "{% endif %}",
        "{% if message['role'] == 'user' %}",
        "{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}",
        "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}",
        "{% endfor %}",
    );
    let path = dir.join("tokenizer_config.json");
    let text = std::fs::read_to_string(&path).expect("the fixture has a tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&text).expect("the fixture's tokenizer_config.json is JSON");
    config["chat_template"] = serde_json::json!(template);
    std::fs::write(&path, config.to_string()).expect("the temp tokenizer_config.json is writable");
}
