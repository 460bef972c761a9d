//! Entry points of `llm2llm list`, `show`, `report` and `export`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sqlx::SqlitePool;

use super::chart::draw_accuracy_chart;
use super::export::{last_iteration, training_set};
use super::iterations::iteration_rows;
use super::render::{Format, format_accuracy, render_report};
use super::runs::{all_runs, example_counts, find_run, phases};
use super::table::{Align, Table};

/// Default location of the run database, relative to the working directory.
pub const DEFAULT_DB: &str = "runs/llm2llm.db";

/// Opens an existing run database; unlike `store::open`, a missing file is
/// an error rather than a new empty database.
pub async fn open_existing(path: &Path) -> anyhow::Result<SqlitePool> {
    if !path.is_file() {
        anyhow::bail!(
            "run database {} not found; pass --db PATH, or start a run with `llm2llm run`",
            path.display()
        );
    }
    crate::store::open(path).await
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("failed to write to standard output")?;
    stdout.flush().context("failed to write to standard output")
}

/// Command-line arguments of `llm2llm report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run name or numeric id.
    pub run: String,

    /// Run database.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,

    /// Table format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also draw seed and test accuracy per iteration to this file; the
    /// extension (.svg or .png) picks the format. Repeat for both.
    #[arg(long, value_name = "PATH")]
    pub chart: Vec<PathBuf>,
}

/// Runs `llm2llm report`.
pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    // Check chart extensions before any work, so a typo fails fast.
    for path in &args.chart {
        super::chart::ChartFormat::from_path(path)?;
    }
    let pool = open_existing(&args.db).await?;
    let run = find_run(&pool, &args.run).await?;
    let rows = iteration_rows(&pool, run.id)
        .await
        .with_context(|| format!("failed to summarise run `{}`", run.name))?;

    write_stdout(&render_report(&run, &rows, args.format))?;

    for path in &args.chart {
        let title = format!("{}: accuracy per iteration", run.name);
        draw_accuracy_chart(path, &title, &rows)?;
        tracing::info!("wrote the accuracy chart {}", path.display());
    }
    Ok(())
}

/// Command-line arguments of `llm2llm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Run database.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// Runs `llm2llm list`.
pub async fn list(args: ListArgs) -> anyhow::Result<()> {
    let pool = open_existing(&args.db).await?;
    let runs = all_runs(&pool).await?;
    if runs.is_empty() {
        return write_stdout(&format!("no runs recorded in {}\n", args.db.display()));
    }

    let mut table = Table::new(&[
        ("id", Align::Right),
        ("name", Align::Left),
        ("method", Align::Left),
        ("status", Align::Left),
        ("iterations", Align::Right),
        ("seed", Align::Right),
        ("generated", Align::Right),
        ("last seed acc", Align::Right),
        ("last test acc", Align::Right),
        ("created", Align::Left),
    ]);
    for run in &runs {
        let counts = example_counts(&pool, run.id).await?;
        let rows = iteration_rows(&pool, run.id).await?;
        let last_seed = rows.iter().rev().find(|row| row.seed_accuracy.is_some());
        let last_test = rows.iter().rev().find(|row| row.test_accuracy.is_some());
        table.push(vec![
            run.id.to_string(),
            run.name.clone(),
            run.method.clone(),
            run.status.clone(),
            rows.len().to_string(),
            counts.seed.to_string(),
            counts.generated.to_string(),
            last_seed.map_or("-".to_string(), |row| {
                format_accuracy(row.seed_accuracy, row.seed_correct, row.seed_evaluated)
            }),
            last_test.map_or("-".to_string(), |row| {
                format_accuracy(row.test_accuracy, row.test_correct, row.test_evaluated)
            }),
            run.created_at.clone(),
        ]);
    }
    write_stdout(&table.to_text())
}

/// Command-line arguments of `llm2llm show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Run name or numeric id.
    pub run: String,

    /// Run database.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// Runs `llm2llm show`.
pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let pool = open_existing(&args.db).await?;
    let run = find_run(&pool, &args.run).await?;
    let counts = example_counts(&pool, run.id).await?;
    let phases = phases(&pool, run.id).await?;

    let mut fields = Table::new(&[("field", Align::Left), ("value", Align::Left)]);
    let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_string());
    fields.push(vec!["id".into(), run.id.to_string()]);
    fields.push(vec!["name".into(), run.name.clone()]);
    fields.push(vec!["method".into(), run.method.clone()]);
    fields.push(vec!["status".into(), run.status.clone()]);
    fields.push(vec!["stop reason".into(), dash(&run.stop_reason)]);
    fields.push(vec!["created".into(), run.created_at.clone()]);
    fields.push(vec!["finished".into(), dash(&run.finished_at)]);
    fields.push(vec![
        "seed".into(),
        format!(
            "{} ({} examples, sha256 {})",
            run.seed_path, counts.seed, run.seed_sha256
        ),
    ]);
    let test = match (&run.test_path, &run.test_sha256) {
        (Some(path), sha) => format!("{path} ({} examples, sha256 {})", counts.test, dash(sha)),
        (None, _) => "-".to_string(),
    };
    fields.push(vec!["test".into(), test]);
    fields.push(vec![
        "generated".into(),
        format!("{} examples", counts.generated),
    ]);

    let mut out = format!("run {} `{}`\n", run.id, run.name);
    // Drop the header and rule lines of the two-column table: it reads as a
    // list of fields.
    out.extend(
        fields
            .to_text()
            .lines()
            .skip(2)
            .map(|line| format!("  {line}\n")),
    );

    if phases.is_empty() {
        out.push_str("\nno phases recorded\n");
    } else {
        let mut table = Table::new(&[
            ("iter", Align::Right),
            ("phase", Align::Left),
            ("status", Align::Left),
            ("seconds", Align::Right),
            ("started", Align::Left),
            ("finished", Align::Left),
        ]);
        for phase in &phases {
            table.push(vec![
                phase.iteration.to_string(),
                phase.phase.clone(),
                phase.status.clone(),
                format!("{:.1}", phase.seconds),
                phase.started_at.clone(),
                dash(&phase.finished_at),
            ]);
        }
        out.push_str(&format!("\nphases\n{}", table.to_text()));
    }

    let config =
        serde_json::to_string_pretty(&run.config()).unwrap_or_else(|_| run.config_json.clone());
    out.push_str(&format!("\nconfiguration\n{config}\n"));
    write_stdout(&out)
}

/// Command-line arguments of `llm2llm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Run name or numeric id.
    pub run: String,

    /// Iteration whose training set to write: the seed examples plus the
    /// examples generated in iterations before it (0 is the seed set alone).
    #[arg(long)]
    pub iteration: i64,

    /// Output jsonl file; standard output when absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Run database.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// Runs `llm2llm export`.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let pool = open_existing(&args.db).await?;
    let run = find_run(&pool, &args.run).await?;

    // The training set after the last recorded iteration (its generated
    // examples included) is the last one that can exist.
    let max_iteration = last_iteration(&pool, run.id)
        .await?
        .map_or(0, |last| last + 1);
    if !(0..=max_iteration).contains(&args.iteration) {
        anyhow::bail!(
            "--iteration {} is out of range for run `{}`; choose 0 to {max_iteration}",
            args.iteration,
            run.name
        );
    }

    let rows = training_set(&pool, run.id, args.iteration).await?;
    let mut text = String::new();
    for row in &rows {
        text.push_str(&serde_json::to_string(row).context("failed to encode an example as JSON")?);
        text.push('\n');
    }

    match &args.out {
        Some(out) => {
            if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create the folder {}", parent.display()))?;
            }
            std::fs::write(out, &text)
                .with_context(|| format!("failed to write {}", out.display()))?;
            tracing::info!(
                "wrote the {} examples of iteration {} of run `{}` to {}",
                rows.len(),
                args.iteration,
                run.name,
                out.display()
            );
            Ok(())
        }
        None => write_stdout(&text),
    }
}
