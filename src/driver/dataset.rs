//! What the loop needs from datasets: loading a GSM8K jsonl file, the
//! student's prompt and completion format, and scoring an output against a
//! reference answer.
//!
//! NOTE: a minimal stand-in until the `data` module's loader and scorer are
//! merged; the loop calls only these functions, so swapping them is local.

use std::path::Path;

use anyhow::Context;

/// One valid problem of a dataset file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileExample {
    /// 1-based line in the file.
    pub line: usize,
    pub question: String,
    pub answer: String,
}

/// Loads a GSM8K jsonl file, rejecting it when no line is valid.
pub fn load(path: &Path) -> anyhow::Result<Vec<FileExample>> {
    #[derive(serde::Deserialize)]
    struct Line {
        question: String,
        answer: String,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut examples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: invalid GSM8K line", path.display(), index + 1))?;
        examples.push(FileExample { line: index + 1, question: parsed.question, answer: parsed.answer });
    }
    anyhow::ensure!(!examples.is_empty(), "{} contains no valid example", path.display());
    Ok(examples)
}

/// The student's prompt for a question.
pub fn prompt(question: &str) -> String {
    format!("Question: {question}\nAnswer:")
}

/// The completion the student learns after [`prompt`].
pub fn completion(answer: &str) -> String {
    format!(" {answer}")
}

/// The verdict on one generated output.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub extracted: Option<String>,
    pub rule: String,
    pub correct: bool,
}

/// Scores a raw output against a reference solution ending in `#### N`.
pub fn score(output: &str, reference_answer: &str) -> Scored {
    fn after_marker(text: &str) -> Option<String> {
        let (_, tail) = text.rsplit_once("####")?;
        let value = tail.trim().lines().next()?.trim().replace(',', "");
        (!value.is_empty()).then_some(value)
    }
    let reference = after_marker(reference_answer);
    let extracted = after_marker(output);
    let correct = reference.is_some() && extracted == reference;
    let rule = if extracted.is_some() { "hash_marker" } else { "none" };
    Scored { extracted, rule: rule.to_string(), correct }
}
