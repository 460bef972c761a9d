//! Entry point of `llm2llm baseline`. It takes the flags of `llm2llm run`
//! plus the method and its settings, and validates them before any work
//! starts. Then it records the run, generates its examples once, and runs
//! one iteration of the LLM2LLM loop (train, evaluate) on the seed set plus
//! those examples.
//!
//! Naming an unfinished baseline run with `--name` continues it with the
//! settings it started with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::SqlitePool;

use super::eda::EdaConfig;
use super::generate::{AugGptTeacher, generate_examples};
use super::wordnet::{self, WordNet};
use super::{BaselineSettings, MatchedRun, Method, matched_run};
use crate::driver::cli::{RunArgs, sha256_file};
use crate::driver::config::RunConfig;
use crate::driver::{Finish, dataset, execute};
use crate::store::{self, ExampleKind, NewRun, RunRow};
use crate::teacher::Teacher;

/// Command-line arguments of `llm2llm baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// Baseline: the seed set alone, EDA, or AugGPT rephrasings by the teacher.
    #[arg(long, value_enum)]
    pub method: Method,

    /// Generate exactly as many examples as run RUN (name or id, in the same
    /// database) generated over all its iterations, spread evenly over the
    /// seed examples.
    #[arg(long, value_name = "RUN")]
    pub match_run: Option<String>,

    /// Generated examples per seed example, unless --match-run sets the
    /// total [default: 9 for EDA, teacher.examples_per_call for AugGPT].
    #[arg(long, value_name = "N")]
    pub per_example: Option<usize>,

    /// EDA: share of eligible words replaced by a WordNet synonym (0 disables).
    #[arg(long, value_name = "ALPHA", default_value_t = EdaConfig::default().alpha_sr)]
    pub alpha_sr: f64,

    /// EDA: synonyms inserted per eligible word (0 disables).
    #[arg(long, value_name = "ALPHA", default_value_t = EdaConfig::default().alpha_ri)]
    pub alpha_ri: f64,

    /// EDA: word swaps per eligible word (0 disables).
    #[arg(long, value_name = "ALPHA", default_value_t = EdaConfig::default().alpha_rs)]
    pub alpha_rs: f64,

    /// EDA: probability of deleting each eligible word (0 disables).
    #[arg(long, value_name = "P", default_value_t = EdaConfig::default().p_rd)]
    pub p_rd: f64,

    /// EDA: seed of its random choices [default: the training seed].
    #[arg(long, value_name = "SEED")]
    pub eda_seed: Option<u64>,

    /// EDA: WordNet 3.0 database folder [default: $WNSEARCHDIR, $WNHOME/dict,
    /// then /usr/share/wordnet].
    #[arg(long, value_name = "DIR")]
    pub wordnet_dir: Option<PathBuf>,

    /// AugGPT: teacher calls per seed example at most, including calls that
    /// make up for rejected rephrasings.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_calls_per_example: u32,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `llm2llm baseline`.
pub async fn baseline(args: BaselineArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.run.iters.is_none_or(|iters| iters == 1),
        "invalid --iters for a baseline: a baseline trains and evaluates once; leave --iters out"
    );
    if let Some(name) = &args.run.name {
        check_run_name(name)?;
    }
    let mut config = args.run.effective_config()?;
    config.run.iterations = 1;
    let seed_sha256 = sha256_file(&args.run.seed)?;
    let test_sha256 = args.run.test.as_deref().map(sha256_file).transpose()?;
    let pool = store::open(&args.run.db).await?;

    if let Some(name) = &args.run.name
        && let Some(existing) = find_run(&pool, name).await?
    {
        check_same_experiment(&existing, &args, &seed_sha256, test_sha256.as_deref())?;
        let config: RunConfig = serde_json::from_str(&existing.config_json).with_context(|| {
            format!(
                "the stored configuration of run {} is unreadable",
                existing.name
            )
        })?;
        let settings = stored_settings(&pool, &existing).await?;
        tracing::info!(run = %existing.name, "continuing the unfinished baseline run");
        return finish(pool, existing, config, settings, &args.run.db).await;
    }

    let matched = match &args.match_run {
        Some(name) => Some(
            matched_run(&pool, name, &seed_sha256)
                .await
                .context("invalid --match-run")?,
        ),
        None => None,
    };
    let settings = settings_from_args(&args, &config, matched)?;
    if settings.method == Method::AugGpt {
        config.teacher.examples_per_call = max_count(&settings, &args.run.seed)?;
    }
    let run = create_run(
        &pool,
        &args,
        &config,
        &settings,
        &seed_sha256,
        test_sha256.as_deref(),
    )
    .await?;
    finish(pool, run, config, settings, &args.run.db).await
}

/// Validates the method settings into [`BaselineSettings`].
fn settings_from_args(
    args: &BaselineArgs,
    config: &RunConfig,
    matched: Option<MatchedRun>,
) -> anyhow::Result<BaselineSettings> {
    let eda = EdaConfig {
        alpha_sr: args.alpha_sr,
        alpha_ri: args.alpha_ri,
        alpha_rs: args.alpha_rs,
        p_rd: args.p_rd,
        n_aug: 0,
    };
    let per_example = match (args.method, args.per_example) {
        (_, Some(n)) => n,
        (Method::AugGpt, None) => config.teacher.examples_per_call,
        (_, None) => EdaConfig::default().n_aug,
    };
    anyhow::ensure!(
        args.method == Method::Finetune || per_example > 0 || matched.is_some(),
        "invalid --per-example 0: {} would generate nothing; use --method finetune for the seed set alone",
        args.method.as_str()
    );
    if args.method != Method::Finetune && args.match_run.is_none() && args.per_example.is_none() {
        tracing::info!(
            per_example,
            "generating the default number of examples per seed example"
        );
    }
    anyhow::ensure!(
        args.method != Method::Finetune || (args.match_run.is_none() && args.per_example.is_none()),
        "--match-run and --per-example do not apply to --method finetune, which generates nothing"
    );

    let wordnet_dir = wordnet::resolve_wordnet_dir(args.wordnet_dir.as_deref());
    if args.method == Method::Eda {
        eda.validate()
            .context("invalid EDA flags (--alpha-sr, --alpha-ri, --alpha-rs, --p-rd)")?;
        // Fails here, before a run is recorded, when WordNet is missing.
        WordNet::check_installed(&wordnet_dir)?;
    }
    Ok(BaselineSettings {
        method: args.method,
        per_example,
        matched,
        eda,
        eda_seed: args.eda_seed.unwrap_or(config.train.seed),
        wordnet_dir,
        max_calls_per_example: args.max_calls_per_example.max(1),
    })
}

/// Rephrasings requested per AugGPT call: the most any seed example needs.
fn max_count(settings: &BaselineSettings, seed_path: &Path) -> anyhow::Result<usize> {
    let seeds = load_dataset(seed_path, "--seed")?.len();
    Ok(settings.counts(seeds).into_iter().max().unwrap_or(0).max(1))
}

async fn create_run(
    pool: &SqlitePool,
    args: &BaselineArgs,
    config: &RunConfig,
    settings: &BaselineSettings,
    seed_sha256: &str,
    test_sha256: Option<&str>,
) -> anyhow::Result<RunRow> {
    let seed = load_dataset(&args.run.seed, "--seed")?;
    let test = args
        .run
        .test
        .as_deref()
        .map(|path| load_dataset(path, "--test"))
        .transpose()?;
    let seed_path = absolute_display(&args.run.seed)?;
    let test_path = args.run.test.as_deref().map(absolute_display).transpose()?;
    let config_json =
        serde_json::to_string(config).context("failed to serialise the configuration")?;
    let settings_json =
        serde_json::to_string(settings).context("failed to serialise the baseline settings")?;

    let mut tx = pool
        .begin()
        .await
        .context("failed to start a transaction")?;
    let name = match &args.run.name {
        Some(name) => name.clone(),
        None => {
            let id = store::next_run_id(&mut *tx)
                .await
                .context("failed to choose a run name")?;
            format!("{}-{id}", settings.method.as_str())
        }
    };
    let new_run = NewRun {
        name: &name,
        method: settings.method.as_str(),
        config_json: &config_json,
        seed_path: &seed_path,
        seed_sha256,
        test_path: test_path.as_deref(),
        test_sha256,
    };
    let run_id = store::insert_run(&mut *tx, &new_run)
        .await
        .with_context(|| format!("failed to record run {name:?}; is the name taken?"))?;
    super::store::set_baseline_json(&mut *tx, run_id, &settings_json)
        .await
        .context("failed to store the baseline settings")?;
    for (kind, examples) in [
        (ExampleKind::Seed, Some(&seed)),
        (ExampleKind::Test, test.as_ref()),
    ] {
        for example in examples.into_iter().flatten() {
            store::insert_file_example(
                &mut *tx,
                run_id,
                kind,
                &example.question,
                &example.answer,
                example.line as i64,
            )
            .await
            .context("failed to store the datasets")?;
        }
    }
    tx.commit().await.context("failed to commit the new run")?;
    tracing::info!(run = %name, run_id, method = settings.method.as_str(), seed = seed.len(), "created the baseline run");
    find_run(pool, &name)
        .await?
        .context("the run just created is missing")
}

/// Generates the examples (once), then trains and evaluates.
async fn finish(
    pool: SqlitePool,
    run: RunRow,
    config: RunConfig,
    settings: BaselineSettings,
    db: &Path,
) -> anyhow::Result<()> {
    let generated = match generate(&pool, &run, &config, &settings).await {
        Ok(generated) => generated,
        Err(err) => {
            let reason = format!("{err:#}");
            if let Err(db_err) = store::set_run_status(&pool, run.id, "failed", Some(&reason)).await
            {
                tracing::error!(run = %run.name, "failed to mark the run failed: {db_err}");
            }
            return Err(err);
        }
    };
    if let Some(matched) = &settings.matched
        && generated != matched.generated
    {
        tracing::warn!(
            run = %run.name,
            generated,
            matched = matched.generated,
            "the baseline has a different number of generated examples than the matched run"
        );
    }

    let name = run.name.clone();
    match execute(pool, run, config, db).await? {
        Finish::Completed => println!(
            "baseline run {name} ({}) finished with {generated} generated examples",
            settings.method.as_str()
        ),
        Finish::NoMisses { .. } => println!(
            "baseline run {name} ({}) finished",
            settings.method.as_str()
        ),
    }
    Ok(())
}

async fn generate(
    pool: &SqlitePool,
    run: &RunRow,
    config: &RunConfig,
    settings: &BaselineSettings,
) -> anyhow::Result<usize> {
    if settings.method != Method::AugGpt {
        return generate_examples::<Teacher>(pool, run.id, settings, None).await;
    }
    let teacher = Teacher::new(config.teacher_config(), pool.clone())
        .context("failed to set up the teacher client")?;
    let teacher = AugGptTeacher {
        client: &teacher,
        batch_size: config.teacher.max_concurrent.max(1),
        rouge_threshold: config.teacher.rouge_threshold,
    };
    generate_examples(pool, run.id, settings, Some(teacher)).await
}

/// Checks that `--name` names an unfinished baseline of the same method on
/// the same files.
fn check_same_experiment(
    run: &RunRow,
    args: &BaselineArgs,
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
        run.method == args.method.as_str(),
        "run {} is a {} run, not a {} baseline; choose another --name",
        run.name,
        run.method,
        args.method.as_str()
    );
    anyhow::ensure!(
        run.seed_sha256 == seed_sha256,
        "the seed file {} differs from the one run {} started with ({}); start a new run with another --name",
        args.run.seed.display(),
        run.name,
        run.seed_path
    );
    anyhow::ensure!(
        run.test_sha256.as_deref() == test_sha256,
        "the test file differs from the one run {} started with ({}); start a new run with another --name",
        run.name,
        run.test_path.as_deref().unwrap_or("no test file")
    );
    Ok(())
}

async fn stored_settings(pool: &SqlitePool, run: &RunRow) -> anyhow::Result<BaselineSettings> {
    let json = super::store::baseline_json(pool, run.id)
        .await
        .context("failed to read the baseline settings")?
        .with_context(|| {
            format!(
                "run {} has no baseline settings; is it an LLM2LLM run?",
                run.name
            )
        })?;
    serde_json::from_str(&json).with_context(|| {
        format!(
            "the stored baseline settings of run {} are unreadable",
            run.name
        )
    })
}

async fn find_run(pool: &SqlitePool, name_or_id: &str) -> anyhow::Result<Option<RunRow>> {
    let mut conn = pool
        .acquire()
        .await
        .context("failed to connect to the run database")?;
    store::find_run(&mut conn, name_or_id)
        .await
        .context("failed to look up the run")
}

fn load_dataset(path: &Path, flag: &str) -> anyhow::Result<Vec<dataset::FileExample>> {
    dataset::load(path).with_context(|| format!("invalid {flag} file {}", path.display()))
}

/// Rejects names that would be awkward in paths and shells (the rule `run`
/// applies).
fn check_run_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    anyhow::ensure!(
        valid,
        "invalid --name {name:?}: use 1 to 100 letters, digits, '.', '_' or '-'"
    );
    Ok(())
}

fn absolute_display(path: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("failed to resolve {}", path.display()))?;
    Ok(absolute.display().to_string())
}
