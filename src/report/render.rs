//! The per-iteration report of one run as text, markdown, CSV or JSON.
//!
//! Text and markdown are for reading: accuracies in % with their counts,
//! seconds with one decimal, and a second table of rejections by reason.
//! CSV and JSON are for tools: one row per iteration, accuracies as
//! fractions, one `rejected_<reason>` column per reason, empty cells (CSV)
//! or `null` (JSON) for values not recorded.

use serde::Serialize;

use super::iterations::{IterationRow, rejection_reasons};
use super::runs::RunInfo;
use super::table::{Align, Table};

/// Output format of `llm2llm report` and `llm2llm compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Csv,
    Json,
}

/// Renders the report of a run in a format.
pub fn render_report(run: &RunInfo, rows: &[IterationRow], format: Format) -> String {
    match format {
        Format::Text => {
            let mut out = format!(
                "{}\n\n{}",
                run_heading(run),
                iteration_table(rows).to_text()
            );
            if let Some(reasons) = rejection_table(rows) {
                out.push_str(&format!(
                    "\nrejected items by reason\n{}",
                    reasons.to_text()
                ));
            }
            out
        }
        Format::Markdown => {
            let mut out = format!(
                "{}\n\n{}",
                run_heading(run),
                iteration_table(rows).to_markdown()
            );
            if let Some(reasons) = rejection_table(rows) {
                out.push_str(&format!(
                    "\nRejected items by reason:\n\n{}",
                    reasons.to_markdown()
                ));
            }
            out
        }
        Format::Csv => csv_table(rows).to_csv(),
        Format::Json => {
            let report = JsonReport {
                run,
                config: run.config(),
                iterations: rows,
            };
            // Serializing plain structs, strings and finite numbers cannot fail.
            let mut text =
                serde_json::to_string_pretty(&report).expect("report rows serialize to JSON");
            text.push('\n');
            text
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    run: &'a RunInfo,
    /// The run's effective configuration, parsed.
    config: serde_json::Value,
    iterations: &'a [IterationRow],
}

fn run_heading(run: &RunInfo) -> String {
    let mut heading = format!(
        "run {} `{}`: method {}, status {}",
        run.id, run.name, run.method, run.status
    );
    heading.push_str(&format!("\nseed {}", run.seed_path));
    if let Some(test) = &run.test_path {
        heading.push_str(&format!(", test {test}"));
    }
    if let Some(reason) = &run.stop_reason {
        heading.push_str(&format!("\nstopped: {reason}"));
    }
    heading
}

/// Formats a fraction as a percentage with its counts, e.g. `45.0% (9/20)`.
pub fn format_accuracy(accuracy: Option<f64>, correct: i64, evaluated: i64) -> String {
    match accuracy {
        Some(accuracy) => format!("{:.1}% ({correct}/{evaluated})", accuracy * 100.0),
        None => "-".to_string(),
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

/// Builds the table of text and markdown reports.
pub fn iteration_table(rows: &[IterationRow]) -> Table {
    let mut table = Table::new(&[
        ("iter", Align::Right),
        ("train size", Align::Right),
        ("loss", Align::Right),
        ("seed acc", Align::Right),
        ("test acc", Align::Right),
        ("misses", Align::Right),
        ("calls", Align::Right),
        ("generated", Align::Right),
        ("accepted", Align::Right),
        ("rejected", Align::Right),
        ("tokens in/out", Align::Right),
        ("cost", Align::Right),
        ("train s", Align::Right),
        ("eval seed s", Align::Right),
        ("eval test s", Align::Right),
        ("augment s", Align::Right),
        ("total s", Align::Right),
    ]);
    for row in rows {
        table.push(vec![
            row.iteration.to_string(),
            row.train_size.to_string(),
            optional(row.train_loss.map(|loss| format!("{loss:.4}"))),
            format_accuracy(row.seed_accuracy, row.seed_correct, row.seed_evaluated),
            format_accuracy(row.test_accuracy, row.test_correct, row.test_evaluated),
            optional(row.misses),
            if row.teacher_failed > 0 {
                format!("{} ({} failed)", row.teacher_calls, row.teacher_failed)
            } else {
                row.teacher_calls.to_string()
            },
            row.generated.to_string(),
            row.accepted.to_string(),
            row.rejected.to_string(),
            format!("{}/{}", row.prompt_tokens, row.completion_tokens),
            optional(row.cost.map(|cost| format!("{cost:.4}"))),
            format!("{:.1}", row.seconds("train")),
            format!("{:.1}", row.seconds("eval_seed")),
            format!("{:.1}", row.seconds("eval_test")),
            format!("{:.1}", row.seconds("augment")),
            format!("{:.1}", row.total_seconds()),
        ]);
    }
    table
}

/// Rejections per iteration and reason; `None` when nothing was rejected.
fn rejection_table(rows: &[IterationRow]) -> Option<Table> {
    let reasons = rejection_reasons(rows);
    if reasons.is_empty() {
        return None;
    }
    let mut table = Table::new(&[("iter", Align::Right)]);
    for reason in &reasons {
        table.add_column(reason, Align::Right);
    }
    for row in rows {
        let mut cells = vec![row.iteration.to_string()];
        cells.extend(reasons.iter().map(|reason| {
            row.rejected_by_reason
                .get(reason)
                .copied()
                .unwrap_or(0)
                .to_string()
        }));
        table.push(cells);
    }
    Some(table)
}

/// Builds the machine-readable table of CSV reports.
pub fn csv_table(rows: &[IterationRow]) -> Table {
    let reasons = rejection_reasons(rows);
    let mut columns: Vec<String> = [
        "iteration",
        "train_size",
        "train_loss",
        "seed_evaluated",
        "seed_correct",
        "seed_accuracy",
        "test_evaluated",
        "test_correct",
        "test_accuracy",
        "misses",
        "teacher_calls",
        "teacher_failed",
        "generated",
        "accepted",
        "rejected",
    ]
    .iter()
    .map(|name| name.to_string())
    .collect();
    columns.extend(reasons.iter().map(|reason| format!("rejected_{reason}")));
    columns.extend(
        [
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "train_seconds",
            "eval_seed_seconds",
            "eval_test_seconds",
            "augment_seconds",
            "total_seconds",
        ]
        .iter()
        .map(|name| name.to_string()),
    );
    let column_refs: Vec<(&str, Align)> = columns
        .iter()
        .map(|name| (name.as_str(), Align::Left))
        .collect();
    let mut table = Table::new(&column_refs);

    let blank = |value: Option<String>| value.unwrap_or_default();
    for row in rows {
        let mut cells = vec![
            row.iteration.to_string(),
            row.train_size.to_string(),
            blank(row.train_loss.map(|loss| loss.to_string())),
            row.seed_evaluated.to_string(),
            row.seed_correct.to_string(),
            blank(row.seed_accuracy.map(|accuracy| accuracy.to_string())),
            row.test_evaluated.to_string(),
            row.test_correct.to_string(),
            blank(row.test_accuracy.map(|accuracy| accuracy.to_string())),
            blank(row.misses.map(|misses| misses.to_string())),
            row.teacher_calls.to_string(),
            row.teacher_failed.to_string(),
            row.generated.to_string(),
            row.accepted.to_string(),
            row.rejected.to_string(),
        ];
        cells.extend(reasons.iter().map(|reason| {
            row.rejected_by_reason
                .get(reason)
                .copied()
                .unwrap_or(0)
                .to_string()
        }));
        cells.extend([
            row.prompt_tokens.to_string(),
            row.completion_tokens.to_string(),
            blank(row.cost.map(|cost| cost.to_string())),
            row.seconds("train").to_string(),
            row.seconds("eval_seed").to_string(),
            row.seconds("eval_test").to_string(),
            row.seconds("augment").to_string(),
            row.total_seconds().to_string(),
        ]);
        table.push(cells);
    }
    table
}
