//! `llm2llm serve` as a user runs it: start-up errors that stop the command
//! before any model is loaded.

use std::path::Path;
use std::process::Command;

fn fixture_model() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/model")
}

#[test]
fn missing_model_dir_names_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .args(["serve", "--port", "0", "--model", "/nonexistent/checkpoint"])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/checkpoint"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout before listening"
    );
}

#[test]
fn broken_chat_template_names_file() {
    let checkpoint = tempfile::tempdir().expect("a temp dir");
    for entry in std::fs::read_dir(fixture_model()).expect("the fixture model exists") {
        let entry = entry.expect("a readable fixture entry");
        std::fs::copy(entry.path(), checkpoint.path().join(entry.file_name()))
            .expect("the fixture file copies");
    }
    let config_path = checkpoint.path().join("tokenizer_config.json");
    let text =
        std::fs::read_to_string(&config_path).expect("the fixture has a tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&text).expect("the fixture's config is JSON");
    config["chat_template"] =
        serde_json::json!("{% for message in messages %}{{ message.content }");
    std::fs::write(&config_path, config.to_string()).expect("the temp config is writable");

    let output = Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .args(["serve", "--port", "0", "--model"])
        .arg(checkpoint.path())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tokenizer_config.json"), "{stderr}");
    assert!(stderr.contains("does not compile"), "{stderr}");
}

#[test]
fn zero_batch_size_is_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .args(["serve", "--batch-size", "0", "--model"])
        .arg(fixture_model())
        .output()
        .expect("the binary runs");

    assert_eq!(output.status.code(), Some(2));
}
