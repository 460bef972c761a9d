//! The loop's access to the `data` module, in one place: loading a GSM8K
//! jsonl file, the student's prompt and completion format, and scoring an
//! output against a stored reference solution.

use std::path::Path;

use crate::data::{self, score::extract_answer, Dataset, DatasetError};

/// One valid problem of a dataset file.
pub type FileExample = data::Example;

/// Loads and validates a GSM8K jsonl file, logging each problem found, and
/// fails when no line is valid.
pub fn load(path: &Path) -> Result<Vec<FileExample>, DatasetError> {
    let dataset = Dataset::load(path)?;
    dataset.log_problems();
    Ok(dataset.examples)
}

/// Formats a question as the student's prompt.
pub fn prompt(question: &str) -> String {
    data::student_prompt(question)
}

/// Formats a reference solution as the completion the student learns after [`prompt`].
pub fn completion(answer: &str) -> String {
    data::student_completion(answer)
}

/// The verdict on one generated output.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The extracted value in canonical form.
    pub extracted: Option<String>,
    /// The extraction rule that decided.
    pub rule: String,
    pub correct: bool,
}

/// Scores a raw output against a reference solution ending in `#### N`.
/// Stored examples were validated on load, so the reference always has a
/// final answer; one without counts every output as wrong.
pub fn score(output: &str, reference_answer: &str) -> Scored {
    match extract_answer(reference_answer).value {
        Some(reference) => {
            let verdict = data::score::score(output, reference);
            Scored { extracted: verdict.extracted, rule: verdict.rule.as_str().to_string(), correct: verdict.correct }
        }
        None => {
            let extraction = extract_answer(output);
            Scored {
                extracted: extraction.value.map(|value| value.to_string()),
                rule: extraction.rule.as_str().to_string(),
                correct: false,
            }
        }
    }
}
