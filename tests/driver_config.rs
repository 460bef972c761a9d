//! Run configuration: defaults, the TOML file, command-line overrides and
//! validation, and resume's refusal of changed input files.

use std::path::{Path, PathBuf};

use clap::Parser;
use llm2llm::driver::cli::{resume, sha256_file, ResumeArgs, RunArgs};
use llm2llm::driver::config::{ConfigError, RunConfig};
use llm2llm::store::{self, ExampleKind, NewRun};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/model")
}

/// A config file with prompt files and the fixture model, in `dir`.
fn write_config(dir: &Path, body: &str) -> PathBuf {
    std::fs::write(dir.join("system.md"), "You write math problems.").unwrap();
    std::fs::write(dir.join("user.md"), "{question}").unwrap();
    let path = dir.join("config.toml");
    let text = format!(
        "[model]\ndir = {model:?}\n\n[teacher]\nsystem_prompt = \"system.md\"\nuser_prompt = \"user.md\"\n\n{body}",
        model = fixture_model().display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn parse(args: &[&str]) -> RunArgs {
    let mut argv = vec!["run", "--seed", "seed.jsonl"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("valid arguments").run
}

#[test]
fn file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[lora]\nr = 4\n\n[run]\niterations = 2\n");
    let config = RunConfig::from_file(&path).unwrap();
    let defaults = RunConfig::default();
    assert_eq!(config.lora.r, 4);
    assert_eq!(config.run.iterations, 2);
    assert_eq!(config.lora.lora_alpha, defaults.lora.lora_alpha, "unset keys keep their defaults");
    assert_eq!(config.train, defaults.train);
}

#[test]
fn file_paths_resolve_against_file_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let config = RunConfig::from_file(&path).unwrap();
    assert_eq!(config.teacher.system_prompt, dir.path().join("system.md"));
}

#[test]
fn flags_override_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[lora]\nr = 4\n\n[train]\nepochs = 7\nlearning_rate = 0.5\n");
    let args = parse(&[
        "--config",
        path.to_str().unwrap(),
        "--lora-r",
        "2",
        "--lr",
        "0.001",
        "--iters",
        "3",
        "--lora-targets",
        "q_proj,v_proj",
        "--teacher-url",
        "http://127.0.0.1:9/v1",
    ]);
    let config = args.effective_config().unwrap();
    assert_eq!(config.lora.r, 2);
    assert_eq!(config.train.learning_rate, 0.001);
    assert_eq!(config.train.epochs, 7, "a value only in the file is kept");
    assert_eq!(config.run.iterations, 3);
    assert_eq!(config.lora.target_modules, ["q_proj", "v_proj"]);
    assert_eq!(config.teacher.base_url, "http://127.0.0.1:9/v1");
}

#[test]
fn unknown_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[train]\nepocs = 2\n");
    let err = RunConfig::from_file(&path).unwrap_err();
    let message = format!("{err}: {}", std::error::Error::source(&err).map(|e| e.to_string()).unwrap_or_default());
    assert!(matches!(err, ConfigError::Parse { .. }), "{message}");
    assert!(message.contains("epocs"), "the message names the key: {message}");
    assert!(message.contains("config.toml"), "the message names the file: {message}");
}

#[test]
fn invalid_value_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[lora]\nr = 0\n", "lora.r"),
        ("[lora]\ntarget_modules = [\"qkv\"]\n", "lora.target_modules"),
        ("[train]\nlearning_rate = -1.0\n", "train.learning_rate"),
        ("[generate]\nbatch_size = 0\n", "generate.batch_size"),
        ("[run]\niterations = 0\n", "run.iterations"),
    ];
    for (body, field) in cases {
        let path = write_config(dir.path(), body);
        let err = RunConfig::from_file(&path).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains(field), "{body:?}: expected {field} in {err}");
    }

    // The teacher section holds the prompt paths already, so its cases edit
    // the loaded value instead of the file.
    let path = write_config(dir.path(), "");
    let mut bad_url = RunConfig::from_file(&path).unwrap();
    bad_url.teacher.base_url = "not a url".to_string();
    let err = bad_url.validate().unwrap_err();
    assert!(err.to_string().contains("teacher.base_url"), "{err}");

    let mut bad_threshold = RunConfig::from_file(&path).unwrap();
    bad_threshold.teacher.rouge_threshold = 1.5;
    let err = bad_threshold.validate().unwrap_err();
    assert!(err.to_string().contains("teacher.rouge_threshold"), "{err}");
}

#[test]
fn missing_model_folder_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let mut config = RunConfig::from_file(&path).unwrap();
    config.model.dir = dir.path().join("no-such-model");
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("model.dir"), "{err}");
    assert!(err.to_string().contains("--model"), "the message says which flag to fix: {err}");
}

#[test]
fn shipped_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/gsm8k.toml");
    let config = RunConfig::from_file(&path).unwrap();
    assert_eq!(config.teacher.api_key_env, "OPENAI_API_KEY");
    assert!(!config.run.continue_from_previous_adapter, "each iteration starts from the base weights by default");
}

#[test]
fn config_round_trips_through_json() {
    let config = RunConfig::default();
    let json = serde_json::to_string(&config).unwrap();
    let back: RunConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
}

#[tokio::test]
async fn resume_rejects_changed_seed_file() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.jsonl");
    std::fs::write(&seed, "{\"question\": \"1+1?\", \"answer\": \"#### 2\"}\n").unwrap();
    let db = dir.path().join("runs.db");
    let pool = store::open(&db).await.unwrap();
    let config_json = serde_json::to_string(&RunConfig::default()).unwrap();
    let run = NewRun {
        name: "changed",
        method: "llm2llm",
        config_json: &config_json,
        seed_path: seed.to_str().unwrap(),
        seed_sha256: &sha256_file(&seed).unwrap(),
        test_path: None,
        test_sha256: None,
    };
    let run_id = store::insert_run(&pool, &run).await.unwrap();
    store::insert_file_example(&pool, run_id, ExampleKind::Seed, "1+1?", "#### 2", 1).await.unwrap();
    pool.close().await;

    std::fs::write(&seed, "{\"question\": \"1+2?\", \"answer\": \"#### 3\"}\n").unwrap();
    let err = resume(ResumeArgs { run: "changed".to_string(), db }).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("changed since the run started"), "{message}");
    assert!(message.contains("seed.jsonl"), "the message names the file: {message}");
}
