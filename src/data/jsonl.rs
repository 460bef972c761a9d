//! Loading and validation of GSM8K-style jsonl files.
//!
//! Every line is checked and each problem is recorded with the file, the
//! 1-based line and the field, so a user can fix all of them in one pass.
//! These problems skip the line: invalid UTF-8, invalid JSON, a line that is
//! not an object, a missing or non-string `question` or `answer`, an empty
//! question, an answer without a `####` marker, and a final answer that is
//! not a number. A byte order mark at the start of the file, several `####`
//! markers in one answer and a repeated question are warnings and the line
//! is kept. CRLF line ends are accepted and blank lines are skipped. Fields
//! other than `question` and `answer` are ignored.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Example;
use super::score::{self, Number};

/// How many problems [`Dataset::log_problems`] prints before summarising.
const LOGGED_PROBLEMS: usize = 20;

/// A field of a dataset line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Question,
    Answer,
}

impl Field {
    /// Returns the JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Question => "question",
            Field::Answer => "answer",
        }
    }
}

/// The kind of a line's problem. The first group rejects the line, the
/// second (see [`ProblemKind::is_warning`]) only warns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line is not valid UTF-8; `byte` is the 1-based offset of the
    /// first invalid byte within the line.
    InvalidUtf8 { byte: usize },
    /// The line is not valid JSON.
    InvalidJson { column: usize, message: String },
    /// The line is valid JSON but not an object.
    NotAnObject { found: &'static str },
    /// The field is missing.
    MissingField,
    /// The field is not a string.
    WrongType { found: &'static str },
    /// The field is empty or only whitespace.
    Empty,
    /// The answer has no `####` marker.
    NoMarker,
    /// The text after the first `####` is not a number.
    NonNumericFinalAnswer { text: String },
    /// Warning: a UTF-8 byte order mark at the start of the file was removed.
    ByteOrderMark,
    /// Warning: the answer has several `####` markers; the first one counts.
    SeveralMarkers { count: usize },
    /// Warning: the question repeats the one on `first_line` (compared
    /// ignoring case and runs of whitespace); both are kept.
    DuplicateQuestion { first_line: usize },
}

impl ProblemKind {
    /// Returns whether the line is kept despite the problem.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            ProblemKind::ByteOrderMark
                | ProblemKind::SeveralMarkers { .. }
                | ProblemKind::DuplicateQuestion { .. }
        )
    }
}

/// One problem found in a dataset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The field concerned, when the problem is about one field.
    pub field: Option<Field>,
    pub kind: ProblemKind,
}

impl Problem {
    /// Returns whether the line is kept despite the problem.
    pub fn is_warning(&self) -> bool {
        self.kind.is_warning()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.path.display(), self.line)?;
        if let Some(field) = self.field {
            write!(f, "field `{}`: ", field.as_str())?;
        }
        match &self.kind {
            ProblemKind::InvalidUtf8 { byte } => {
                write!(
                    f,
                    "invalid UTF-8 at byte {byte} of the line; save the file as UTF-8"
                )
            }
            ProblemKind::InvalidJson { column, message } => write!(
                f,
                "invalid JSON at column {column}: {message}; each line must be one JSON object"
            ),
            ProblemKind::NotAnObject { found } => write!(
                f,
                "expected a JSON object with `question` and `answer` strings, found {found}"
            ),
            ProblemKind::MissingField => {
                write!(
                    f,
                    "missing; each line needs `question` and `answer` strings"
                )
            }
            ProblemKind::WrongType { found } => write!(f, "expected a string, found {found}"),
            ProblemKind::Empty => write!(f, "empty; write the text of the problem"),
            ProblemKind::NoMarker => write!(
                f,
                "no `####` marker; end the answer with a line `#### N` holding the final number"
            ),
            ProblemKind::NonNumericFinalAnswer { text } => write!(
                f,
                "final answer `{text}` after `####` is not a number; write it in digits, e.g. `#### 42`"
            ),
            ProblemKind::ByteOrderMark => {
                write!(f, "a byte order mark at the start of the file was ignored")
            }
            ProblemKind::SeveralMarkers { count } => {
                write!(
                    f,
                    "{count} `####` markers; the first one is taken as the final answer"
                )
            }
            ProblemKind::DuplicateQuestion { first_line } => {
                write!(f, "same question as line {first_line}; both lines are kept")
            }
        }
    }
}

/// Errors of loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("failed to read the dataset {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} contains no valid example ({}); fix the file or choose another", path.display(), describe_rejections(problems))]
    NoValidExamples {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn describe_rejections(problems: &[Problem]) -> String {
    match problems.iter().find(|problem| !problem.is_warning()) {
        Some(first) => {
            let count = problems
                .iter()
                .filter(|problem| !problem.is_warning())
                .count();
            format!("{count} problems, the first: {first}")
        }
        None => "the file is empty".to_string(),
    }
}

/// The valid examples of a file and the problems found in it.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    /// Valid examples in file order.
    pub examples: Vec<Example>,
    /// Problems in line order: rejected lines and warnings.
    pub problems: Vec<Problem>,
}

impl Dataset {
    /// Reads and validates a jsonl file. Fails when it cannot be read or
    /// contains no valid example.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        let bytes = std::fs::read(path).map_err(|source| DatasetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Dataset::parse(path, &bytes)
    }

    /// Validates jsonl `bytes` read from `path` (used in messages only).
    /// Fails when no line is a valid example.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Dataset, DatasetError> {
        let mut parser = Parser {
            path: path.to_path_buf(),
            problems: Vec::new(),
        };
        let mut examples = Vec::new();
        let mut first_line_of_question: HashMap<String, usize> = HashMap::new();

        let mut bytes = bytes;
        if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
            parser.record(1, None, ProblemKind::ByteOrderMark);
            bytes = rest;
        }

        for (index, raw) in bytes.split(|byte| *byte == b'\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(example) = parser.parse_line(line, raw) else {
                continue;
            };
            let key = normalize_question(&example.question);
            match first_line_of_question.get(&key) {
                Some(&first_line) => parser.record(
                    line,
                    Some(Field::Question),
                    ProblemKind::DuplicateQuestion { first_line },
                ),
                None => {
                    first_line_of_question.insert(key, line);
                }
            }
            examples.push(example);
        }

        let problems = parser.problems;
        if examples.is_empty() {
            return Err(DatasetError::NoValidExamples {
                path: path.to_path_buf(),
                problems,
            });
        }
        Ok(Dataset {
            path: path.to_path_buf(),
            examples,
            problems,
        })
    }

    /// Returns the problems that rejected a line.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|problem| !problem.is_warning())
    }

    /// Returns the problems that only warn.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|problem| problem.is_warning())
    }

    /// Logs the problems as warnings, the first [`LOGGED_PROBLEMS`] one by
    /// one and the rest as a count, and a summary line.
    pub fn log_problems(&self) {
        for problem in self.problems.iter().take(LOGGED_PROBLEMS) {
            tracing::warn!("{problem}");
        }
        if self.problems.len() > LOGGED_PROBLEMS {
            tracing::warn!(
                "{}: {} more problems not shown",
                self.path.display(),
                self.problems.len() - LOGGED_PROBLEMS
            );
        }
        let rejected = self.errors().count();
        if rejected > 0 {
            tracing::warn!(
                "{}: skipped {rejected} invalid lines, kept {} examples",
                self.path.display(),
                self.examples.len()
            );
        }
    }
}

/// Collects problems while reading one file.
struct Parser {
    path: PathBuf,
    problems: Vec<Problem>,
}

impl Parser {
    fn record(&mut self, line: usize, field: Option<Field>, kind: ProblemKind) {
        self.problems.push(Problem {
            path: self.path.clone(),
            line,
            field,
            kind,
        });
    }

    /// Parses one non-blank line; records its problems and returns the
    /// example when the line is valid.
    fn parse_line(&mut self, line: usize, raw: &[u8]) -> Option<Example> {
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(err) => {
                self.record(
                    line,
                    None,
                    ProblemKind::InvalidUtf8 {
                        byte: err.valid_up_to() + 1,
                    },
                );
                return None;
            }
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => {
                let message = err.to_string();
                // serde_json appends " at line L column C"; the column is
                // reported separately and the line is always 1.
                let message = match message.rfind(" at line ") {
                    Some(end) => message[..end].to_string(),
                    None => message,
                };
                self.record(
                    line,
                    None,
                    ProblemKind::InvalidJson {
                        column: err.column(),
                        message,
                    },
                );
                return None;
            }
        };
        let Value::Object(object) = &value else {
            self.record(
                line,
                None,
                ProblemKind::NotAnObject {
                    found: json_type(&value),
                },
            );
            return None;
        };

        let question = self.string_field(line, object, Field::Question);
        let answer = self.string_field(line, object, Field::Answer);
        let final_answer = answer
            .as_deref()
            .and_then(|answer| self.final_answer(line, answer));
        Some(Example {
            line,
            question: question?,
            answer: answer?,
            final_answer: final_answer?,
        })
    }

    fn string_field(
        &mut self,
        line: usize,
        object: &serde_json::Map<String, Value>,
        field: Field,
    ) -> Option<String> {
        let kind = match object.get(field.as_str()) {
            None => ProblemKind::MissingField,
            Some(Value::String(text)) if text.trim().is_empty() => ProblemKind::Empty,
            Some(Value::String(text)) => return Some(text.clone()),
            Some(other) => ProblemKind::WrongType {
                found: json_type(other),
            },
        };
        self.record(line, Some(field), kind);
        None
    }

    /// Reads the value after the first `####` marker of a reference answer.
    fn final_answer(&mut self, line: usize, answer: &str) -> Option<Number> {
        let Some(marker) = answer.find("####") else {
            self.record(line, Some(Field::Answer), ProblemKind::NoMarker);
            return None;
        };
        let after = &answer[marker + "####".len()..];
        let final_text = after.split('\n').next().unwrap_or_default().trim();
        let Some(value) = Number::parse(final_text) else {
            let kind = ProblemKind::NonNumericFinalAnswer {
                text: final_text.to_string(),
            };
            self.record(line, Some(Field::Answer), kind);
            return None;
        };
        let count = score::count_markers(answer);
        if count > 1 {
            self.record(
                line,
                Some(Field::Answer),
                ProblemKind::SeveralMarkers { count },
            );
        }
        Some(value)
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Lowercases and collapses whitespace, so re-typed duplicates match.
fn normalize_question(question: &str) -> String {
    question
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
