//! Loading GSM8K-style jsonl: valid files, every kind of bad line with its
//! file, line and field, and the prompt format.

use std::path::{Path, PathBuf};

use llm2llm::data::{Dataset, DatasetError, Example, Field, Number, Problem, ProblemKind};

const GOOD_1: &str = r#"{"question": "Ann has 3 red pens and 4 blue pens. How many pens does she have?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}"#;
const GOOD_2: &str = r#"{"question": "A box holds 1,200 nails; 200 are used. How many remain?", "answer": "1200 - 200 = 1000\n#### 1,000"}"#;
const GOOD_3: &str = r#"{"question": "It was 2 degrees and fell by 9. What is it now?", "answer": "2 - 9 = -7\n#### -7"}"#;

struct TempFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write_file(bytes: &[u8]) -> TempFile {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let path = dir.path().join("seed.jsonl");
    std::fs::write(&path, bytes).expect("the temp file can be written");
    TempFile { _dir: dir, path }
}

fn load(text: &str) -> Dataset {
    let file = write_file(text.as_bytes());
    Dataset::load(&file.path).expect("the file has valid examples")
}

/// Loads a file whose line 2 is `bad` between two good lines and returns
/// its rejection problems.
fn problems_of_line(bad: &[u8]) -> (PathBuf, Vec<Problem>) {
    let mut bytes = format!("{GOOD_1}\n").into_bytes();
    bytes.extend_from_slice(bad);
    bytes.extend_from_slice(format!("\n{GOOD_2}\n").as_bytes());
    let file = write_file(&bytes);
    let dataset = Dataset::load(&file.path).expect("two lines are valid");
    assert_eq!(
        dataset.examples.len(),
        2,
        "the good lines around the bad one are kept"
    );
    (file.path.clone(), dataset.problems)
}

fn assert_single_problem(
    bad: &[u8],
    field: Option<Field>,
    expected_kind: ProblemKind,
    message_part: &str,
) {
    let (path, problems) = problems_of_line(bad);
    assert_eq!(problems.len(), 1, "one problem in {problems:?}");
    let problem = &problems[0];
    assert_eq!(problem.line, 2);
    assert_eq!(problem.field, field);
    assert_eq!(problem.kind, expected_kind);
    let message = problem.to_string();
    assert!(
        message.starts_with(&format!("{}:2: ", path.display())),
        "file and line in {message:?}"
    );
    assert!(
        message.contains(message_part),
        "{message_part:?} in {message:?}"
    );
}

#[test]
fn valid_file_loads_every_example() {
    let dataset = load(&format!("{GOOD_1}\n{GOOD_2}\n{GOOD_3}\n"));
    assert_eq!(dataset.examples.len(), 3);
    assert!(dataset.problems.is_empty());
}

#[test]
fn example_records_line_and_final_answer() {
    let dataset = load(&format!("{GOOD_1}\n{GOOD_2}\n{GOOD_3}"));
    let example = &dataset.examples[1];
    assert_eq!(example.line, 2);
    assert_eq!(example.final_answer, Number::integer(1000));
    assert_eq!(example.answer, "1200 - 200 = 1000\n#### 1,000");
    assert_eq!(dataset.examples[2].final_answer, Number::integer(-7));
}

#[test]
fn invalid_json_is_reported() {
    let (_, problems) = problems_of_line(br#####"{"question": "x", "answer": "#### 1""#####);
    assert_eq!(problems.len(), 1);
    assert!(
        matches!(problems[0].kind, ProblemKind::InvalidJson { .. }),
        "{:?}",
        problems[0]
    );
    assert!(
        problems[0].to_string().contains("invalid JSON at column"),
        "{}",
        problems[0]
    );
}

#[test]
fn missing_question_is_reported() {
    assert_single_problem(
        br#####"{"answer": "#### 1"}"#####,
        Some(Field::Question),
        ProblemKind::MissingField,
        "field `question`: missing",
    );
}

#[test]
fn missing_answer_is_reported() {
    assert_single_problem(
        br#"{"question": "How many?"}"#,
        Some(Field::Answer),
        ProblemKind::MissingField,
        "field `answer`: missing",
    );
}

#[test]
fn both_missing_fields_are_reported() {
    let (_, problems) = problems_of_line(br#"{"q": "How many?"}"#);
    let fields: Vec<_> = problems.iter().map(|problem| problem.field).collect();
    assert_eq!(fields, vec![Some(Field::Question), Some(Field::Answer)]);
}

#[test]
fn non_string_answer_is_reported() {
    assert_single_problem(
        br#"{"question": "How many?", "answer": 7}"#,
        Some(Field::Answer),
        ProblemKind::WrongType { found: "a number" },
        "expected a string, found a number",
    );
}

#[test]
fn non_object_line_is_reported() {
    assert_single_problem(
        b"[1, 2]",
        None,
        ProblemKind::NotAnObject { found: "an array" },
        "found an array",
    );
}

#[test]
fn answer_without_marker_is_reported() {
    assert_single_problem(
        br#"{"question": "How many?", "answer": "It is 7."}"#,
        Some(Field::Answer),
        ProblemKind::NoMarker,
        "no `####` marker",
    );
}

#[test]
fn non_numeric_final_answer_is_reported() {
    assert_single_problem(
        br#####"{"question": "How many?", "answer": "#### seven"}"#####,
        Some(Field::Answer),
        ProblemKind::NonNumericFinalAnswer {
            text: "seven".to_string(),
        },
        "final answer `seven` after `####` is not a number",
    );
}

#[test]
fn empty_question_is_reported() {
    assert_single_problem(
        br#####"{"question": "   ", "answer": "#### 4"}"#####,
        Some(Field::Question),
        ProblemKind::Empty,
        "field `question`: empty",
    );
}

#[test]
fn invalid_utf8_is_reported_and_reading_continues() {
    assert_single_problem(
        b"{\"question\": \"caf\xE9?\", \"answer\": \"#### 4\"}",
        None,
        ProblemKind::InvalidUtf8 { byte: 18 },
        "invalid UTF-8 at byte 18",
    );
}

#[test]
fn byte_order_mark_is_stripped_with_warning() {
    let file = write_file(format!("\u{FEFF}{GOOD_1}\n{GOOD_2}\n").as_bytes());
    let dataset = Dataset::load(&file.path).expect("both lines are valid");
    assert_eq!(dataset.examples.len(), 2);
    assert_eq!(dataset.warnings().count(), 1);
    assert_eq!(dataset.problems[0].kind, ProblemKind::ByteOrderMark);
    assert_eq!(dataset.problems[0].line, 1);
}

#[test]
fn crlf_line_ends_are_accepted() {
    let dataset = load(&format!("{GOOD_1}\r\n{GOOD_2}\r\n"));
    assert_eq!(dataset.examples.len(), 2);
    assert!(dataset.problems.is_empty(), "{:?}", dataset.problems);
    assert!(!dataset.examples[1].answer.ends_with('\r'));
}

#[test]
fn blank_lines_are_skipped_keeping_line_numbers() {
    let dataset = load(&format!("\n{GOOD_1}\n   \n{GOOD_2}\n"));
    let lines: Vec<_> = dataset
        .examples
        .iter()
        .map(|example| example.line)
        .collect();
    assert_eq!(lines, vec![2, 4]);
    assert!(dataset.problems.is_empty());
}

#[test]
fn duplicate_question_warns_and_keeps_both() {
    let again = GOOD_1.replace("Ann has 3", "ann  has 3");
    let dataset = load(&format!("{GOOD_1}\n{GOOD_2}\n{again}\n"));
    assert_eq!(dataset.examples.len(), 3);
    assert_eq!(dataset.problems.len(), 1);
    assert_eq!(
        dataset.problems[0].kind,
        ProblemKind::DuplicateQuestion { first_line: 1 }
    );
    assert_eq!(dataset.problems[0].line, 3);
}

#[test]
fn several_markers_warn_and_first_wins() {
    let line = r#####"{"question": "How many?", "answer": "#### 4\n#### 5"}"#####;
    let dataset = load(&format!("{line}\n"));
    assert_eq!(dataset.examples[0].final_answer, Number::integer(4));
    assert_eq!(
        dataset.problems[0].kind,
        ProblemKind::SeveralMarkers { count: 2 }
    );
    assert!(dataset.problems[0].is_warning());
}

#[test]
fn file_without_valid_example_is_an_error() {
    let file = write_file(b"{\"question\": \"x\"}\nnot json\n");
    let err = Dataset::load(&file.path).expect_err("no line is valid");
    assert!(
        matches!(&err, DatasetError::NoValidExamples { problems, .. } if problems.len() == 2),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "{}:1: field `answer`: missing",
            file.path.display()
        )),
        "{message}"
    );
}

#[test]
fn empty_file_is_an_error() {
    let file = write_file(b"");
    let err = Dataset::load(&file.path).expect_err("an empty file has no example");
    assert!(err.to_string().contains("the file is empty"), "{err}");
}

#[test]
fn missing_file_error_names_path() {
    let err =
        Dataset::load(Path::new("/nonexistent/seed.jsonl")).expect_err("the file does not exist");
    assert!(matches!(err, DatasetError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/seed.jsonl"), "{err}");
}

#[test]
fn sft_example_matches_fixture_format() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/tiny-llama/expected.json")
            .expect("the fixture exists"),
    )
    .expect("the fixture is JSON");
    let example = Example {
        line: 1,
        question: "Bo had 30 coins and gave away 4. How many are left?".to_string(),
        answer: "Bo has 30 - 4 = <<30-4=26>>26 coins left.\n#### 26".to_string(),
        final_answer: Number::integer(26),
    };
    let sft = example.sft_example();
    assert_eq!(
        Some(sft.prompt.as_str()),
        expected["sft"]["prompt"].as_str()
    );
    assert_eq!(
        Some(sft.completion.as_str()),
        expected["sft"]["answer"].as_str()
    );
}
