//! Entry points of `llm2llm run` and `llm2llm resume`. `run` merges its
//! flags over the config file into a validated configuration, records the
//! run with its datasets, and starts the loop. `resume` (or `run --name` of
//! an unfinished run) checks the input files and continues the loop.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::config::RunConfig;
use super::{dataset, execute, Finish};
use crate::store::{self, ExampleKind, NewRun, RunRow};
use crate::student::{DType, DeviceKind};

/// Default location of the run database.
pub const DEFAULT_DB: &str = "runs/llm2llm.db";

/// Command-line arguments of `llm2llm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Seed set: GSM8K-style jsonl (`question`, `answer` ending in `#### N`).
    #[arg(long, value_name = "FILE")]
    pub seed: PathBuf,

    /// Test set in the same format, evaluated every iteration.
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,

    /// Iterations of train, evaluate, augment [config: run.iterations].
    #[arg(long, value_name = "N")]
    pub iters: Option<usize>,

    /// TOML configuration; flags override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run database (SQLite); artifacts go to `<its folder>/<run id>/`.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,

    /// Run name (letters, digits, `.`, `_`, `-`). Naming an unfinished run continues it.
    #[arg(long)]
    pub name: Option<String>,

    /// Student checkpoint folder (Hugging Face layout) [config: model.dir].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Weight and activation type [config: model.dtype].
    #[arg(long, value_enum)]
    pub dtype: Option<DTypeArg>,

    /// Device [config: model.device].
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,

    /// LoRA rank [config: lora.r].
    #[arg(long, value_name = "R")]
    pub lora_r: Option<usize>,

    /// LoRA alpha; the update is scaled by alpha / r [config: lora.lora_alpha].
    #[arg(long, value_name = "ALPHA")]
    pub lora_alpha: Option<f64>,

    /// LoRA dropout probability during training [config: lora.lora_dropout].
    #[arg(long, value_name = "P")]
    pub lora_dropout: Option<f64>,

    /// Comma-separated projections to adapt, e.g. q_proj,v_proj [config: lora.target_modules].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub lora_targets: Option<Vec<String>>,

    /// Epochs per iteration [config: train.epochs].
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Peak learning rate [config: train.learning_rate].
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,

    /// Sequences per micro-batch [config: train.micro_batch_size].
    #[arg(long, value_name = "N")]
    pub micro_batch_size: Option<usize>,

    /// Micro-batches per optimizer step [config: train.gradient_accumulation].
    #[arg(long, value_name = "N")]
    pub grad_accum: Option<usize>,

    /// Maximum tokens per training sequence [config: train.max_seq_len].
    #[arg(long, value_name = "TOKENS")]
    pub max_seq_len: Option<usize>,

    /// Seed of LoRA initialisation, dropout and shuffling [config: train.seed].
    #[arg(long, value_name = "SEED")]
    pub train_seed: Option<u64>,

    /// Start each iteration from the previous iteration's adapter instead of
    /// the base weights [config: run.continue_from_previous_adapter].
    #[arg(long)]
    pub continue_from_previous_adapter: bool,

    /// Maximum new tokens per evaluation answer [config: generate.max_new_tokens].
    #[arg(long, value_name = "TOKENS")]
    pub max_new_tokens: Option<usize>,

    /// Prompts generated together during evaluation [config: generate.batch_size].
    #[arg(long, value_name = "N")]
    pub eval_batch_size: Option<usize>,

    /// Teacher base URL, e.g. http://127.0.0.1:8000/v1 [config: teacher.base_url].
    #[arg(long, value_name = "URL")]
    pub teacher_url: Option<String>,

    /// Teacher model name [config: teacher.model].
    #[arg(long, value_name = "NAME")]
    pub teacher_model: Option<String>,

    /// Environment variable that holds the teacher's API key [config: teacher.api_key_env].
    #[arg(long, value_name = "VAR")]
    pub teacher_api_key_env: Option<String>,

    /// Teacher sampling temperature [config: teacher.temperature].
    #[arg(long, value_name = "T")]
    pub teacher_temperature: Option<f32>,

    /// Concurrent teacher requests [config: teacher.max_concurrent].
    #[arg(long, value_name = "N")]
    pub teacher_concurrency: Option<usize>,

    /// New examples requested per missed seed example [config: teacher.examples_per_call].
    #[arg(long, value_name = "K")]
    pub examples_per_call: Option<usize>,
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DTypeArg {
    F32,
    Bf16,
    F16,
}

/// `--device` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Metal,
}

impl RunArgs {
    /// Builds the effective configuration: defaults, then the file, then flags.
    pub fn effective_config(&self) -> anyhow::Result<RunConfig> {
        let mut config = match &self.config {
            Some(path) => RunConfig::from_file(path)?,
            None => RunConfig::default(),
        };
        self.apply_overrides(&mut config);
        config.validate()?;
        config.absolutize_paths().context("failed to resolve the configured paths")?;
        Ok(config)
    }

    fn apply_overrides(&self, config: &mut RunConfig) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *target = value.clone();
            }
        }
        set(&mut config.run.iterations, &self.iters);
        set(&mut config.model.dir, &self.model);
        if let Some(dtype) = self.dtype {
            config.model.dtype = match dtype {
                DTypeArg::F32 => DType::F32,
                DTypeArg::Bf16 => DType::Bf16,
                DTypeArg::F16 => DType::F16,
            };
        }
        if let Some(device) = self.device {
            config.model.device = match device {
                DeviceArg::Cpu => DeviceKind::Cpu,
                DeviceArg::Cuda => DeviceKind::Cuda,
                DeviceArg::Metal => DeviceKind::Metal,
            };
        }
        set(&mut config.lora.r, &self.lora_r);
        set(&mut config.lora.lora_alpha, &self.lora_alpha);
        set(&mut config.lora.lora_dropout, &self.lora_dropout);
        set(&mut config.lora.target_modules, &self.lora_targets);
        set(&mut config.train.epochs, &self.epochs);
        set(&mut config.train.learning_rate, &self.lr);
        set(&mut config.train.micro_batch_size, &self.micro_batch_size);
        set(&mut config.train.gradient_accumulation, &self.grad_accum);
        set(&mut config.train.max_seq_len, &self.max_seq_len);
        set(&mut config.train.seed, &self.train_seed);
        if self.continue_from_previous_adapter {
            config.run.continue_from_previous_adapter = true;
        }
        set(&mut config.generate.max_new_tokens, &self.max_new_tokens);
        set(&mut config.generate.batch_size, &self.eval_batch_size);
        set(&mut config.teacher.base_url, &self.teacher_url);
        set(&mut config.teacher.model, &self.teacher_model);
        set(&mut config.teacher.api_key_env, &self.teacher_api_key_env);
        set(&mut config.teacher.temperature, &self.teacher_temperature);
        set(&mut config.teacher.max_concurrent, &self.teacher_concurrency);
        set(&mut config.teacher.examples_per_call, &self.examples_per_call);
    }
}

/// Runs `llm2llm run`.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        check_run_name(name)?;
    }
    let config = args.effective_config()?;
    let seed_sha256 = sha256_file(&args.seed)?;
    let test_sha256 = args.test.as_deref().map(sha256_file).transpose()?;
    let pool = store::open(&args.db).await?;

    if let Some(name) = &args.name {
        let mut conn = pool.acquire().await.context("failed to connect to the run database")?;
        if let Some(existing) = store::find_run(&mut conn, name).await.context("failed to look up the run")? {
            drop(conn);
            return continue_named_run(pool, existing, &args, &config, &seed_sha256, test_sha256.as_deref()).await;
        }
    }

    let seed = load_dataset(&args.seed, "--seed")?;
    let test = args.test.as_deref().map(|path| load_dataset(path, "--test")).transpose()?;
    let seed_path = absolute_display(&args.seed)?;
    let test_path = args.test.as_deref().map(absolute_display).transpose()?;
    let config_json = serde_json::to_string(&config).context("failed to serialise the configuration")?;

    let mut tx = pool.begin().await.context("failed to start a transaction")?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => {
            let id = store::next_run_id(&mut *tx).await.context("failed to choose a run name")?;
            format!("run-{id}")
        }
    };
    let new_run = NewRun {
        name: &name,
        method: "llm2llm",
        config_json: &config_json,
        seed_path: &seed_path,
        seed_sha256: &seed_sha256,
        test_path: test_path.as_deref(),
        test_sha256: test_sha256.as_deref(),
    };
    let run_id = store::insert_run(&mut *tx, &new_run)
        .await
        .with_context(|| format!("failed to record run {name:?}; is the name taken?"))?;
    for (kind, examples) in [(ExampleKind::Seed, Some(&seed)), (ExampleKind::Test, test.as_ref())] {
        for example in examples.into_iter().flatten() {
            store::insert_file_example(&mut *tx, run_id, kind, &example.question, &example.answer, example.line as i64)
                .await
                .context("failed to store the datasets")?;
        }
    }
    tx.commit().await.context("failed to commit the new run")?;
    tracing::info!(run = %name, run_id, seed = seed.len(), test = test.as_ref().map_or(0, Vec::len), "created the run");

    let run = find(&pool, &name).await?;
    finish(pool, run, config, &args.db).await
}

/// Command-line arguments of `llm2llm resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Run name or id.
    pub run: String,

    /// Run database (SQLite).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// Runs `llm2llm resume`.
pub async fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.db.is_file(),
        "run database {} not found; pass the --db the run was started with",
        args.db.display()
    );
    let pool = store::open(&args.db).await?;
    let run = find(&pool, &args.run).await?;
    if run.status == "finished" {
        println!("run {} already finished; nothing to resume", run.name);
        return Ok(());
    }
    anyhow::ensure!(
        run.method == "llm2llm",
        "run {} is a {} baseline; resume it with `llm2llm baseline`",
        run.name,
        run.method
    );
    check_file_unchanged(Path::new(&run.seed_path), &run.seed_sha256, "seed")?;
    if let (Some(path), Some(sha256)) = (&run.test_path, &run.test_sha256) {
        check_file_unchanged(Path::new(path), sha256, "test")?;
    }
    let config = stored_config(&run)?;
    finish(pool, run, config, &args.db).await
}

/// Continues the unfinished run that `run --name` named, after checking that
/// it is the same experiment.
async fn continue_named_run(
    pool: SqlitePool,
    run: RunRow,
    args: &RunArgs,
    config: &RunConfig,
    seed_sha256: &str,
    test_sha256: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.status != "finished",
        "run {} already finished; choose another --name, or inspect it with `llm2llm report {}`",
        run.name,
        run.name
    );
    anyhow::ensure!(
        run.method == "llm2llm",
        "run {} is a {} baseline; choose another --name",
        run.name,
        run.method
    );
    anyhow::ensure!(
        run.seed_sha256 == seed_sha256,
        "the seed file {} differs from the one run {} started with ({}); a resumed run must train on the same data, so start a new run with another --name",
        args.seed.display(),
        run.name,
        run.seed_path
    );
    anyhow::ensure!(
        run.test_sha256.as_deref() == test_sha256,
        "the test file differs from the one run {} started with ({}); start a new run with another --name",
        run.name,
        run.test_path.as_deref().unwrap_or("no test file")
    );
    let stored = stored_config(&run)?;
    if &stored != config {
        tracing::warn!(run = %run.name, "the settings differ from the ones the run started with; continuing with the stored ones");
    }
    tracing::info!(run = %run.name, "continuing the unfinished run");
    finish(pool, run, stored, &args.db).await
}

async fn finish(pool: SqlitePool, run: RunRow, config: RunConfig, db: &Path) -> anyhow::Result<()> {
    let name = run.name.clone();
    match execute(pool, run, config, db).await? {
        Finish::Completed => println!("run {name} finished"),
        Finish::NoMisses { iteration } => {
            println!("run {name} stopped early: the student answered every seed example correctly in iteration {iteration}")
        }
    }
    Ok(())
}

async fn find(pool: &SqlitePool, name_or_id: &str) -> anyhow::Result<RunRow> {
    let mut conn = pool.acquire().await.context("failed to connect to the run database")?;
    store::find_run(&mut conn, name_or_id)
        .await
        .context("failed to look up the run")?
        .with_context(|| format!("no run named {name_or_id:?}; `llm2llm list` shows the recorded runs"))
}

fn stored_config(run: &RunRow) -> anyhow::Result<RunConfig> {
    serde_json::from_str(&run.config_json)
        .with_context(|| format!("the stored configuration of run {} is unreadable", run.name))
}

fn load_dataset(path: &Path, flag: &str) -> anyhow::Result<Vec<dataset::FileExample>> {
    dataset::load(path).with_context(|| format!("invalid {flag} file {}", path.display()))
}

/// Rejects names that would be awkward in paths and shells.
fn check_run_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    anyhow::ensure!(
        valid,
        "invalid --name {name:?}: use 1 to 100 letters, digits, '.', '_' or '-'"
    );
    Ok(())
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn check_file_unchanged(path: &Path, expected: &str, what: &str) -> anyhow::Result<()> {
    let actual = sha256_file(path).with_context(|| format!("the run's {what} file is no longer readable"))?;
    anyhow::ensure!(
        actual == expected,
        "the {what} file {} changed since the run started (SHA-256 {actual}, recorded {expected}); \
         restore the original file or start a new run",
        path.display()
    );
    Ok(())
}

fn absolute_display(path: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path).with_context(|| format!("failed to resolve {}", path.display()))?;
    Ok(absolute.display().to_string())
}
