//! A manual measurement, ignored by default: the loop on real GSM8K files
//! with the tiny fixture student and the scripted teacher, for reports on
//! real input without a teacher model. Run it with
//! `LLM2LLM_REAL_SEED=seed.jsonl LLM2LLM_REAL_TEST=test.jsonl
//! cargo test --test driver_real -- --ignored --nocapture`; it prints where
//! the run database is kept, for `llm2llm report scripted --db <path>`.

mod driver_support;

use driver_support::{describe, llm2llm, ScriptedTeacher, Workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual measurement on real data; needs LLM2LLM_REAL_SEED and LLM2LLM_REAL_TEST"]
async fn real_files_with_scripted_teacher() {
    let seed = std::env::var("LLM2LLM_REAL_SEED").expect("set LLM2LLM_REAL_SEED to a GSM8K jsonl seed file");
    let test = std::env::var("LLM2LLM_REAL_TEST").expect("set LLM2LLM_REAL_TEST to a GSM8K jsonl test file");
    let teacher = ScriptedTeacher::start().await;
    let workspace = Workspace::new(&teacher.base_url, 3);
    std::fs::copy(&seed, &workspace.seed).expect("copy the seed file");
    std::fs::copy(&test, &workspace.test).expect("copy the test file");

    // Evaluation settings sized for real answers instead of the unit tests' few tokens.
    let config = std::fs::read_to_string(&workspace.config).expect("read the config");
    let config = config
        .replace("max_new_tokens = 6", "max_new_tokens = 128")
        .replace("batch_size = 2", "batch_size = 16")
        .replace("micro_batch_size = 2", "micro_batch_size = 4");
    std::fs::write(&workspace.config, config).expect("write the config");

    let output = llm2llm(&workspace.run_args("scripted"), None).await;
    assert!(output.status.success(), "{}", describe(&output));
    let db = workspace.db.clone();
    let kept_folder = workspace.dir.keep();
    eprintln!("run database: {} (folder {} is kept)", db.display(), kept_folder.display());
}
