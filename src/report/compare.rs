//! `llm2llm compare`: several runs (LLM2LLM and baselines) side by side in
//! one table, and a chart of test accuracy against training-set size.
//!
//! Each run contributes one row per recorded iteration and a `final` row:
//! the training-set size and accuracies of its last evaluated iteration,
//! and its generated examples, teacher tokens and cost summed over all
//! iterations. A baseline's examples are generated at iteration -1, before
//! its single training iteration 0, so its `-1` row contains the augmentation
//! and its teacher cost.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use plotters::style::RGBColor;
use serde::Serialize;
use sqlx::SqlitePool;

use super::ReportError;
use super::chart::{ChartFormat, Series, draw_line_chart};
use super::cli::{DEFAULT_DB, open_existing};
use super::iterations::{IterationRow, iteration_rows};
use super::render::{Format, format_accuracy};
use super::runs::{RunInfo, find_run};
use super::table::{Align, Table};

/// Command-line arguments of `llm2llm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Runs to compare, by name or numeric id.
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<String>,

    /// Run database.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,

    /// Table format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also draw test accuracy (%) against training examples for every run
    /// to this file; the extension (.svg or .png) picks the format. Repeat
    /// for both.
    #[arg(long, value_name = "PATH")]
    pub chart: Vec<PathBuf>,
}

/// The last evaluated state and the totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FinalRow {
    /// The last iteration with a seed evaluation; `None` before any.
    pub iteration: Option<i64>,
    /// Training-set size of that iteration.
    pub train_size: Option<i64>,
    pub seed_evaluated: i64,
    pub seed_correct: i64,
    pub seed_accuracy: Option<f64>,
    pub test_evaluated: i64,
    pub test_correct: i64,
    pub test_accuracy: Option<f64>,
    /// Generated examples over all iterations.
    pub generated: i64,
    pub teacher_calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Teacher cost over all iterations; `None` without configured prices.
    pub cost: Option<f64>,
}

/// One run's part of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RunComparison {
    pub run: RunInfo,
    pub iterations: Vec<IterationRow>,
    #[serde(rename = "final")]
    pub final_row: FinalRow,
}

/// Sums a run's rows into its [`FinalRow`].
pub fn final_row(rows: &[IterationRow]) -> FinalRow {
    let mut out = FinalRow::default();
    if let Some(last) = rows.iter().rev().find(|row| row.seed_accuracy.is_some()) {
        out.iteration = Some(last.iteration);
        out.train_size = Some(last.train_size);
        out.seed_evaluated = last.seed_evaluated;
        out.seed_correct = last.seed_correct;
        out.seed_accuracy = last.seed_accuracy;
        out.test_evaluated = last.test_evaluated;
        out.test_correct = last.test_correct;
        out.test_accuracy = last.test_accuracy;
    }
    out.generated = rows.iter().map(|row| row.accepted).sum();
    out.teacher_calls = rows.iter().map(|row| row.teacher_calls).sum();
    out.prompt_tokens = rows.iter().map(|row| row.prompt_tokens).sum();
    out.completion_tokens = rows.iter().map(|row| row.completion_tokens).sum();
    out.cost = rows.iter().map(|row| row.cost).sum::<Option<f64>>();
    out
}

/// Reads the runs named by `keys`, in that order.
pub async fn compare_runs(
    pool: &SqlitePool,
    keys: &[String],
) -> Result<Vec<RunComparison>, ReportError> {
    let mut runs = Vec::with_capacity(keys.len());
    for key in keys {
        let run = find_run(pool, key).await?;
        let iterations = iteration_rows(pool, run.id).await?;
        let final_row = final_row(&iterations);
        runs.push(RunComparison {
            run,
            iterations,
            final_row,
        });
    }
    Ok(runs)
}

/// Renders a comparison in a format: one table with a row per run and
/// iteration plus each run's `final` row (text, markdown, CSV), or every
/// run with its rows (JSON).
pub fn render_comparison(runs: &[RunComparison], format: Format) -> String {
    match format {
        Format::Text => text_table(runs).to_text(),
        Format::Markdown => text_table(runs).to_markdown(),
        Format::Csv => csv_table(runs).to_csv(),
        Format::Json => {
            #[derive(Serialize)]
            struct JsonComparison<'a> {
                runs: &'a [RunComparison],
            }
            // Serializing plain structs, strings and finite numbers cannot fail.
            let mut text = serde_json::to_string_pretty(&JsonComparison { runs })
                .expect("comparison rows serialize to JSON");
            text.push('\n');
            text
        }
    }
}

fn dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

fn text_table(runs: &[RunComparison]) -> Table {
    let mut table = Table::new(&[
        ("run", Align::Left),
        ("method", Align::Left),
        ("iter", Align::Right),
        ("train size", Align::Right),
        ("generated", Align::Right),
        ("teacher tokens in/out", Align::Right),
        ("cost", Align::Right),
        ("seed acc", Align::Right),
        ("test acc", Align::Right),
    ]);
    for comparison in runs {
        let run = &comparison.run;
        for row in &comparison.iterations {
            table.push(vec![
                run.name.clone(),
                run.method.clone(),
                row.iteration.to_string(),
                row.train_size.to_string(),
                row.accepted.to_string(),
                format!("{}/{}", row.prompt_tokens, row.completion_tokens),
                dash(row.cost.map(|cost| format!("{cost:.4}"))),
                format_accuracy(row.seed_accuracy, row.seed_correct, row.seed_evaluated),
                format_accuracy(row.test_accuracy, row.test_correct, row.test_evaluated),
            ]);
        }
        let last = &comparison.final_row;
        table.push(vec![
            run.name.clone(),
            run.method.clone(),
            "final".to_string(),
            dash(last.train_size),
            last.generated.to_string(),
            format!("{}/{}", last.prompt_tokens, last.completion_tokens),
            dash(last.cost.map(|cost| format!("{cost:.4}"))),
            format_accuracy(last.seed_accuracy, last.seed_correct, last.seed_evaluated),
            format_accuracy(last.test_accuracy, last.test_correct, last.test_evaluated),
        ]);
    }
    table
}

fn csv_table(runs: &[RunComparison]) -> Table {
    let mut table = Table::new(&[
        ("run", Align::Left),
        ("method", Align::Left),
        ("iteration", Align::Left),
        ("train_size", Align::Right),
        ("generated", Align::Right),
        ("teacher_calls", Align::Right),
        ("prompt_tokens", Align::Right),
        ("completion_tokens", Align::Right),
        ("cost", Align::Right),
        ("seed_evaluated", Align::Right),
        ("seed_correct", Align::Right),
        ("seed_accuracy", Align::Right),
        ("test_evaluated", Align::Right),
        ("test_correct", Align::Right),
        ("test_accuracy", Align::Right),
    ]);
    let empty = |value: Option<f64>| value.map_or_else(String::new, |value| value.to_string());
    for comparison in runs {
        let run = &comparison.run;
        for row in &comparison.iterations {
            table.push(vec![
                run.name.clone(),
                run.method.clone(),
                row.iteration.to_string(),
                row.train_size.to_string(),
                row.accepted.to_string(),
                row.teacher_calls.to_string(),
                row.prompt_tokens.to_string(),
                row.completion_tokens.to_string(),
                empty(row.cost),
                row.seed_evaluated.to_string(),
                row.seed_correct.to_string(),
                empty(row.seed_accuracy),
                row.test_evaluated.to_string(),
                row.test_correct.to_string(),
                empty(row.test_accuracy),
            ]);
        }
        let last = &comparison.final_row;
        table.push(vec![
            run.name.clone(),
            run.method.clone(),
            "final".to_string(),
            last.train_size
                .map_or_else(String::new, |size| size.to_string()),
            last.generated.to_string(),
            last.teacher_calls.to_string(),
            last.prompt_tokens.to_string(),
            last.completion_tokens.to_string(),
            empty(last.cost),
            last.seed_evaluated.to_string(),
            last.seed_correct.to_string(),
            empty(last.seed_accuracy),
            last.test_evaluated.to_string(),
            last.test_correct.to_string(),
            empty(last.test_accuracy),
        ]);
    }
    table
}

/// Line colors of the comparison chart, one per run, repeating after ten
/// (the Tableau 10 palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws test accuracy (%) against training-set size, one line per run,
/// to `path` (SVG or PNG by extension). When no run has a test set, seed
/// accuracy is drawn instead and the title says so.
pub fn draw_comparison_chart(
    path: &std::path::Path,
    runs: &[RunComparison],
) -> Result<(), ReportError> {
    let has_test = runs
        .iter()
        .any(|run| run.iterations.iter().any(|row| row.test_accuracy.is_some()));
    let accuracy = |row: &IterationRow| {
        if has_test {
            row.test_accuracy
        } else {
            row.seed_accuracy
        }
    };
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(index, comparison)| Series {
            label: format!("{} ({})", comparison.run.name, comparison.run.method),
            points: comparison
                .iterations
                .iter()
                .filter_map(|row| Some((row.train_size as f64, accuracy(row)? * 100.0)))
                .collect(),
            color: PALETTE[index % PALETTE.len()],
        })
        .filter(|series| !series.points.is_empty())
        .collect();
    if series.is_empty() {
        return Err(ReportError::NothingToChart {
            path: path.to_path_buf(),
        });
    }
    let title = if has_test {
        "test accuracy against training examples"
    } else {
        "seed accuracy against training examples (no run has a test set)"
    };
    draw_line_chart(path, title, "training examples", false, &series)
}

/// Runs `llm2llm compare`.
pub async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    // Check chart extensions before any work, so a typo fails fast.
    for path in &args.chart {
        ChartFormat::from_path(path)?;
    }
    let pool = open_existing(&args.db).await?;
    let runs = compare_runs(&pool, &args.runs)
        .await
        .context("failed to read the runs to compare")?;

    let text = render_comparison(&runs, args.format);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("failed to write to standard output")?;
    stdout
        .flush()
        .context("failed to write to standard output")?;

    for path in &args.chart {
        draw_comparison_chart(path, &runs)?;
        tracing::info!("wrote the comparison chart {}", path.display());
    }
    Ok(())
}
