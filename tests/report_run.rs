//! Reports of a recorded run: per-iteration numbers from a database filled
//! with plain SQL, every output format, charts, export, and the `list`,
//! `show`, `report` and `export` commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use llm2llm::report::chart::draw_accuracy_chart;
use llm2llm::report::export::training_set;
use llm2llm::report::render::render_report;
use llm2llm::report::{Format, IterationRow, find_run, iteration_rows};
use sqlx::SqlitePool;

/// A database with run 1 `demo` (three iterations, 4 seed and 2 test
/// examples) and run 2 `empty` (no phases yet).
///
/// Iteration 0: seed 1/4, test 0/2, three teacher calls (one failed) with
/// 220 prompt and 110 completion tokens, 4 accepted, rejected 2 `duplicate`
/// and 1 `invalid_answer`. Iteration 1: train size 8, seed 3/4, test 1/2,
/// one call (80/40 tokens), 1 accepted, 1 `too_similar`. Iteration 2: train
/// size 9, seed 4/4, test 2/2, no augment phase.
const FIXTURE_SQL: &str = r#"
INSERT INTO runs (id, name, method, status, config_json, seed_path, seed_sha256, test_path, test_sha256, stop_reason)
VALUES (1, 'demo', 'llm2llm', 'finished',
        '{"teacher": {"price_prompt_per_million": 2.0, "price_completion_per_million": 8.0}}',
        'seed.jsonl', 'aaaa', 'test.jsonl', 'bbbb', 'student answered every seed example');
INSERT INTO runs (id, name, method, status, config_json, seed_path, seed_sha256)
VALUES (2, 'empty', 'finetune', 'running', '{}', 'seed.jsonl', 'aaaa');

INSERT INTO examples (id, run_id, kind, question, answer, source_line) VALUES
 (1, 1, 'seed', 'Ann has 3 pens and buys 4. How many pens?', '3 + 4 = 7\n#### 7', 1),
 (2, 1, 'seed', 'A box has 10 eggs; 4 break. How many are whole?', '10 - 4 = 6\n#### 6', 2),
 (3, 1, 'seed', 'Tim reads 5 pages a day for 3 days. How many pages?', '5 * 3 = 15\n#### 15', 3),
 (4, 1, 'seed', 'Half of 18 birds fly away. How many stay?', '18 / 2 = 9\n#### 9', 4),
 (5, 1, 'test', 'Sue has 2 cats and 3 dogs. How many pets?', '#### 5', 1),
 (6, 1, 'test', 'A pen costs $2. What do 6 pens cost?', '#### 12', 2);

INSERT INTO phases (run_id, iteration, phase, status, seconds) VALUES
 (1, 0, 'train', 'done', 10.0), (1, 0, 'eval_seed', 'done', 2.0),
 (1, 0, 'eval_test', 'done', 1.0), (1, 0, 'augment', 'done', 5.0),
 (1, 1, 'train', 'done', 12.5), (1, 1, 'eval_seed', 'done', 2.5),
 (1, 1, 'eval_test', 'done', 1.5), (1, 1, 'augment', 'done', 3.0),
 (1, 2, 'train', 'done', 13.0), (1, 2, 'eval_seed', 'done', 2.0),
 (1, 2, 'eval_test', 'running', 1.0);

INSERT INTO training_metrics (run_id, iteration, step, epoch, loss, lr, tokens) VALUES
 (1, 0, 0, 0, 2.0, 0.001, 50), (1, 0, 1, 1, 1.0, 0.001, 50), (1, 0, 2, 1, 0.5, 0.001, 50),
 (1, 1, 0, 0, 0.4, 0.001, 90);

INSERT INTO predictions (run_id, iteration, example_id, output, extracted, rule, correct) VALUES
 (1, 0, 1, '#### 7', '7', 'hash_marker', 1), (1, 0, 2, '#### 5', '5', 'hash_marker', 0),
 (1, 0, 3, 'about 8', '8', 'last_number', 0), (1, 0, 4, 'no idea', NULL, 'none', 0),
 (1, 0, 5, '#### 4', '4', 'hash_marker', 0), (1, 0, 6, '#### 10', '10', 'hash_marker', 0),
 (1, 1, 1, '#### 7', '7', 'hash_marker', 1), (1, 1, 2, '#### 6', '6', 'hash_marker', 1),
 (1, 1, 3, '#### 15', '15', 'hash_marker', 1), (1, 1, 4, '#### 8', '8', 'hash_marker', 0),
 (1, 1, 5, '#### 5', '5', 'hash_marker', 1), (1, 1, 6, '#### 10', '10', 'hash_marker', 0),
 (1, 2, 1, '#### 7', '7', 'hash_marker', 1), (1, 2, 2, '#### 6', '6', 'hash_marker', 1),
 (1, 2, 3, '#### 15', '15', 'hash_marker', 1), (1, 2, 4, '#### 9', '9', 'hash_marker', 1),
 (1, 2, 5, '#### 5', '5', 'hash_marker', 1), (1, 2, 6, '#### 12', '12', 'hash_marker', 1);

INSERT INTO teacher_calls (id, run_id, iteration, purpose, seed_example_id, request_key, model, base_url,
                           request_json, status, prompt_tokens, completion_tokens) VALUES
 (1, 1, 0, 'llm2llm', 2, 'k1', 'm', 'http://127.0.0.1:1', '{}', 'ok', 100, 50),
 (2, 1, 0, 'llm2llm', 3, 'k2', 'm', 'http://127.0.0.1:1', '{}', 'ok', 120, 60),
 (3, 1, 0, 'llm2llm', 4, 'k3', 'm', 'http://127.0.0.1:1', '{}', 'failed', NULL, NULL),
 (4, 1, 1, 'llm2llm', 4, 'k4', 'm', 'http://127.0.0.1:1', '{}', 'ok', 80, 40);

INSERT INTO examples (id, run_id, kind, question, answer, parent_id, iteration, method, teacher_call_id, position) VALUES
 (7, 1, 'generated', 'A crate has 12 eggs; 5 break. How many are whole?', '12 - 5 = 7\n#### 7', 2, 0, 'llm2llm', 1, 0),
 (8, 1, 'generated', 'Max reads 4 pages a day for 6 days. How many pages?', '4 * 6 = 24\n#### 24', 3, 0, 'llm2llm', 2, 1),
 (9, 1, 'generated', 'Lia runs 2 km a day for 7 days. How far?', '2 * 7 = 14\n#### 14', 3, 0, 'llm2llm', 2, 2),
 (10, 1, 'generated', 'Half of 30 ducks swim off. How many stay?', '30 / 2 = 15\n#### 15', 4, 0, 'llm2llm', 3, 3),
 (11, 1, 'generated', 'Half of 40 geese leave. How many stay?', '40 / 2 = 20\n#### 20', 4, 1, 'llm2llm', 4, 0);

INSERT INTO rejected_items (run_id, iteration, call_id, seed_example_id, reason, text) VALUES
 (1, 0, 1, 2, 'duplicate', 'x'), (1, 0, 2, 3, 'duplicate', 'y'), (1, 0, 2, 3, 'invalid_answer', 'z'),
 (1, 1, 4, 4, 'too_similar', 'w');
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    pool: SqlitePool,
}

impl Fixture {
    fn dir(&self) -> &Path {
        self.db
            .parent()
            .expect("the database is inside the temp dir")
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let db = dir.path().join("runs.db");
    let pool = llm2llm::store::open(&db).await.expect("the database opens");
    sqlx::raw_sql(sqlx::AssertSqlSafe(FIXTURE_SQL))
        .execute(&pool)
        .await
        .expect("the fixture rows insert");
    Fixture {
        _dir: dir,
        db,
        pool,
    }
}

async fn demo_rows(fixture: &Fixture) -> Vec<IterationRow> {
    iteration_rows(&fixture.pool, 1)
        .await
        .expect("the rows compute")
}

fn column<R, T>(rows: &[R], value: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

#[tokio::test]
async fn rows_cover_every_iteration() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(column(&rows, |row| row.iteration), vec![0, 1, 2]);
}

#[tokio::test]
async fn train_size_adds_earlier_generations() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(column(&rows, |row| row.train_size), vec![4, 8, 9]);
}

#[tokio::test]
async fn accuracies_and_misses_per_iteration() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(
        column(&rows, |row| row.seed_accuracy),
        vec![Some(0.25), Some(0.75), Some(1.0)]
    );
    assert_eq!(
        column(&rows, |row| row.test_accuracy),
        vec![Some(0.0), Some(0.5), Some(1.0)]
    );
    assert_eq!(
        column(&rows, |row| row.misses),
        vec![Some(3), Some(1), Some(0)]
    );
    assert_eq!(column(&rows, |row| row.seed_evaluated), vec![4, 4, 4]);
    assert_eq!(column(&rows, |row| row.test_correct), vec![0, 1, 2]);
}

#[tokio::test]
async fn generated_counts_split_by_outcome() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(column(&rows, |row| row.accepted), vec![4, 1, 0]);
    assert_eq!(column(&rows, |row| row.rejected), vec![3, 1, 0]);
    assert_eq!(column(&rows, |row| row.generated), vec![7, 2, 0]);
    assert_eq!(rows[0].rejected_by_reason.get("duplicate"), Some(&2));
    assert_eq!(rows[0].rejected_by_reason.get("invalid_answer"), Some(&1));
    assert_eq!(rows[1].rejected_by_reason.get("too_similar"), Some(&1));
}

#[tokio::test]
async fn teacher_tokens_and_cost_per_iteration() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(column(&rows, |row| row.teacher_calls), vec![3, 1, 0]);
    assert_eq!(column(&rows, |row| row.teacher_failed), vec![1, 0, 0]);
    assert_eq!(column(&rows, |row| row.prompt_tokens), vec![220, 80, 0]);
    assert_eq!(column(&rows, |row| row.completion_tokens), vec![110, 40, 0]);
    // (220 * 2 + 110 * 8) / 1e6 and (80 * 2 + 40 * 8) / 1e6
    let costs = column(&rows, |row| row.cost.expect("the config has prices"));
    assert!((costs[0] - 0.00132).abs() < 1e-12, "{costs:?}");
    assert!((costs[1] - 0.00048).abs() < 1e-12, "{costs:?}");
}

#[tokio::test]
async fn run_without_prices_has_no_cost() {
    let fixture = fixture().await;
    sqlx::query("INSERT INTO phases (run_id, iteration, phase, status, seconds) VALUES (2, 0, 'train', 'running', 1.5)")
        .execute(&fixture.pool)
        .await
        .expect("the phase inserts");
    let rows = iteration_rows(&fixture.pool, 2)
        .await
        .expect("the rows compute");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cost, None);
    assert_eq!(rows[0].seed_accuracy, None);
}

#[tokio::test]
async fn phase_seconds_and_loss_per_iteration() {
    let fixture = fixture().await;
    let rows = demo_rows(&fixture).await;
    assert_eq!(rows[1].seconds("train"), 12.5);
    assert_eq!(rows[1].total_seconds(), 19.5);
    assert_eq!(rows[2].seconds("augment"), 0.0);
    assert_eq!(rows[2].phases_done, vec!["train", "eval_seed"]);
    assert_eq!(rows[0].train_loss, Some(0.75));
    assert_eq!(rows[2].train_loss, None);
}

#[tokio::test]
async fn run_found_by_name_or_id() {
    let fixture = fixture().await;
    let by_name = find_run(&fixture.pool, "demo")
        .await
        .expect("the run exists");
    let by_id = find_run(&fixture.pool, "1").await.expect("the run exists");
    assert_eq!(by_name.id, 1);
    assert_eq!(by_id.name, "demo");
    let missing = find_run(&fixture.pool, "nope")
        .await
        .expect_err("no such run");
    assert!(
        missing
            .to_string()
            .contains("no run is named or numbered `nope`"),
        "{missing}"
    );
}

async fn report_in(format: Format) -> String {
    let fixture = fixture().await;
    let run = find_run(&fixture.pool, "demo")
        .await
        .expect("the run exists");
    render_report(&run, &demo_rows(&fixture).await, format)
}

#[tokio::test]
async fn text_report_shows_numbers() {
    let text = report_in(Format::Text).await;
    assert!(
        text.contains("run 1 `demo`: method llm2llm, status finished"),
        "{text}"
    );
    assert!(text.contains("25.0% (1/4)"), "{text}");
    assert!(text.contains("50.0% (1/2)"), "{text}");
    assert!(text.contains("220/110"), "{text}");
    assert!(text.contains("0.0013"), "{text}");
    assert!(text.contains("rejected items by reason"), "{text}");
}

#[tokio::test]
async fn text_report_aligns_columns() {
    let text = report_in(Format::Text).await;
    let table: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("iter"))
        .take(5)
        .collect();
    let widths: Vec<usize> = table.iter().map(|line| line.chars().count()).collect();
    assert!(widths.iter().all(|width| *width == widths[0]), "{table:#?}");
}

#[tokio::test]
async fn markdown_report_is_a_table() {
    let markdown = report_in(Format::Markdown).await;
    let rows: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with('|'))
        .collect();
    // Header, alignment row, three iterations; then the rejection table
    // with its header, alignment row and three iterations.
    assert_eq!(rows.len(), 10, "{markdown}");
    assert!(rows[1].contains("---:"), "{markdown}");
    assert!(rows[4].contains("100.0% (4/4)"), "{markdown}");
}

#[tokio::test]
async fn csv_report_has_every_column() {
    let csv = report_in(Format::Csv).await;
    let lines: Vec<Vec<&str>> = csv.lines().map(|line| line.split(',').collect()).collect();
    assert_eq!(lines.len(), 4, "{csv}");
    let header = &lines[0];
    let cell = |row: usize, name: &str| {
        let index = header
            .iter()
            .position(|column| *column == name)
            .unwrap_or_else(|| panic!("column {name}"));
        lines[row + 1][index].to_string()
    };
    assert_eq!(cell(0, "seed_accuracy"), "0.25");
    assert_eq!(cell(1, "train_size"), "8");
    assert_eq!(cell(0, "rejected_duplicate"), "2");
    assert_eq!(cell(1, "rejected_too_similar"), "1");
    assert_eq!(cell(2, "misses"), "0");
    assert_eq!(cell(0, "prompt_tokens"), "220");
    assert_eq!(cell(1, "total_seconds"), "19.5");
    assert_eq!(cell(2, "cost"), "0");
}

#[tokio::test]
async fn json_report_parses_back() {
    let json: serde_json::Value =
        serde_json::from_str(&report_in(Format::Json).await).expect("the report is JSON");
    assert_eq!(json["run"]["name"], "demo");
    assert_eq!(json["config"]["teacher"]["price_prompt_per_million"], 2.0);
    assert_eq!(json["iterations"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["iterations"][1]["train_size"], 8);
    assert_eq!(json["iterations"][0]["rejected_by_reason"]["duplicate"], 2);
    assert_eq!(json["iterations"][1]["test_accuracy"], 0.5);
    assert_eq!(json["iterations"][0]["phase_seconds"]["augment"], 5.0);
}

#[tokio::test]
async fn svg_chart_is_written() {
    let fixture = fixture().await;
    let path = fixture.dir().join("accuracy.svg");
    draw_accuracy_chart(
        &path,
        "demo: accuracy per iteration",
        &demo_rows(&fixture).await,
    )
    .expect("the chart draws");
    let svg = std::fs::read_to_string(&path).expect("the chart was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("seed accuracy"));
    assert!(svg.contains("test accuracy"));
    assert!(svg.len() > 2000, "{} bytes", svg.len());
}

#[tokio::test]
async fn png_chart_is_written() {
    let fixture = fixture().await;
    let path = fixture.dir().join("accuracy.png");
    draw_accuracy_chart(
        &path,
        "demo: accuracy per iteration",
        &demo_rows(&fixture).await,
    )
    .expect("the chart draws");
    let png = std::fs::read(&path).expect("the chart was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 5000, "{} bytes", png.len());
    if let Some(copy) = std::env::var_os("LLM2LLM_KEEP_CHART") {
        std::fs::copy(&path, copy).expect("the chart copies");
    }
}

#[tokio::test]
async fn chart_needs_an_accuracy() {
    let fixture = fixture().await;
    let path = fixture.dir().join("none.svg");
    let err = draw_accuracy_chart(&path, "empty", &[]).expect_err("there is nothing to draw");
    assert!(
        err.to_string().contains("no iteration has an accuracy yet"),
        "{err}"
    );
}

#[tokio::test]
async fn chart_rejects_unknown_extension() {
    let fixture = fixture().await;
    let path = fixture.dir().join("accuracy.jpg");
    let err = draw_accuracy_chart(&path, "demo", &demo_rows(&fixture).await)
        .expect_err("jpg is not supported");
    assert!(
        err.to_string().contains("use a .svg or .png extension"),
        "{err}"
    );
}

#[tokio::test]
async fn training_set_of_first_iteration_is_seed() {
    let fixture = fixture().await;
    let rows = training_set(&fixture.pool, 1, 0)
        .await
        .expect("the set reads");
    assert_eq!(column(&rows, |row| row.id), vec![1, 2, 3, 4]);
    assert!(rows.iter().all(|row| row.kind == "seed"));
}

#[tokio::test]
async fn training_set_adds_earlier_generations() {
    let fixture = fixture().await;
    let rows = training_set(&fixture.pool, 1, 2)
        .await
        .expect("the set reads");
    assert_eq!(
        column(&rows, |row| row.id),
        vec![1, 2, 3, 4, 7, 8, 9, 10, 11]
    );
    let generated = &rows[8];
    assert_eq!(generated.parent_id, Some(4));
    assert_eq!(generated.iteration, Some(1));
    assert_eq!(generated.teacher_call_id, Some(4));
    assert_eq!(generated.method.as_deref(), Some("llm2llm"));
    assert_eq!(rows[0].source_line, Some(1));
}

fn llm2llm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("output is UTF-8")
}

#[tokio::test]
async fn report_command_prints_requested_format() {
    let fixture = fixture().await;
    let db = fixture.db.to_str().expect("temp paths are UTF-8");
    let run = find_run(&fixture.pool, "demo")
        .await
        .expect("the run exists");
    let expected = render_report(&run, &demo_rows(&fixture).await, Format::Csv);
    let output = llm2llm(&["report", "demo", "--db", db, "--format", "csv"]);
    assert_eq!(stdout_of(&output), expected);
}

#[tokio::test]
async fn report_command_draws_both_charts() {
    let fixture = fixture().await;
    let db = fixture.db.to_str().expect("temp paths are UTF-8");
    let svg = fixture.dir().join("charts/a.svg");
    let png = fixture.dir().join("charts/a.png");
    let output = llm2llm(&[
        "report",
        "1",
        "--db",
        db,
        "--chart",
        svg.to_str().expect("UTF-8"),
        "--chart",
        png.to_str().expect("UTF-8"),
    ]);
    stdout_of(&output);
    assert!(svg.is_file());
    assert!(png.is_file());
}

#[tokio::test]
async fn list_command_shows_every_run() {
    let fixture = fixture().await;
    let output = llm2llm(&["list", "--db", fixture.db.to_str().expect("UTF-8")]);
    let text = stdout_of(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[2].contains("demo") && lines[2].contains("100.0% (4/4)"),
        "{text}"
    );
    assert!(
        lines[3].contains("empty") && lines[3].contains("finetune"),
        "{text}"
    );
}

#[tokio::test]
async fn show_command_prints_run_details() {
    let fixture = fixture().await;
    let output = llm2llm(&["show", "demo", "--db", fixture.db.to_str().expect("UTF-8")]);
    let text = stdout_of(&output);
    assert!(
        text.contains("seed.jsonl (4 examples, sha256 aaaa)"),
        "{text}"
    );
    assert!(
        text.contains("test.jsonl (2 examples, sha256 bbbb)"),
        "{text}"
    );
    assert!(
        text.contains("student answered every seed example"),
        "{text}"
    );
    assert!(text.contains("\"price_prompt_per_million\": 2.0"), "{text}");
    assert!(text.contains("eval_test  running"), "{text}");
}

#[tokio::test]
async fn export_command_writes_provenance() {
    let fixture = fixture().await;
    let out = fixture.dir().join("export/iteration1.jsonl");
    let output = llm2llm(&[
        "export",
        "demo",
        "--iteration",
        "1",
        "--db",
        fixture.db.to_str().expect("UTF-8"),
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    stdout_of(&output);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("the export was written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0]["kind"], "seed");
    assert_eq!(lines[0]["parent_id"], serde_json::Value::Null);
    assert_eq!(lines[4]["kind"], "generated");
    assert_eq!(lines[4]["parent_id"], 2);
    assert_eq!(lines[4]["teacher_call_id"], 1);
    assert_eq!(lines[4]["iteration"], 0);
    assert_eq!(
        lines[4]["question"],
        "A crate has 12 eggs; 5 break. How many are whole?"
    );
}

#[tokio::test]
async fn export_rejects_iteration_out_of_range() {
    let fixture = fixture().await;
    let output = llm2llm(&[
        "export",
        "demo",
        "--iteration",
        "4",
        "--db",
        fixture.db.to_str().expect("UTF-8"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--iteration 4 is out of range for run `demo`; choose 0 to 3"),
        "{stderr}"
    );
}

#[test]
fn commands_reject_missing_database() {
    let output = llm2llm(&["list", "--db", "/nonexistent/runs.db"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run database /nonexistent/runs.db not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn report_rejects_unknown_run() {
    let fixture = fixture().await;
    let output = llm2llm(&[
        "report",
        "missing",
        "--db",
        fixture.db.to_str().expect("UTF-8"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no run is named or numbered `missing`"),
        "{stderr}"
    );
}
