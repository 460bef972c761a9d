//! Datasets (GSM8K jsonl), their validation, seed sampling, answer scoring
//! and the prompt format the student is trained and evaluated with.
//!
//! A dataset file contains one JSON object per line with a `question` and an
//! `answer` whose last line is `#### N`, as GSM8K ships it (Cobbe et al.,
//! 2021). Loading validates every line and keeps the valid ones; see
//! [`jsonl`] for the checks.

pub mod cli;
pub mod jsonl;
pub mod sample;
pub mod score;

pub use jsonl::{Dataset, DatasetError, Field, Problem, ProblemKind};
pub use score::{Number, Rule, Verdict};

use crate::student::SftExample;

/// One valid problem of a dataset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// 1-based line in the file.
    pub line: usize,
    pub question: String,
    /// The worked solution, ending with the `#### N` line.
    pub answer: String,
    /// The value after the (first) `####` marker.
    pub final_answer: Number,
}

impl Example {
    /// Returns the example as the student trains on it.
    pub fn sft_example(&self) -> SftExample {
        SftExample {
            prompt: student_prompt(&self.question),
            completion: student_completion(&self.answer),
        }
    }
}

/// Formats a question as the student's prompt, for training and evaluation
/// alike, so both see the same text.
pub fn student_prompt(question: &str) -> String {
    format!("Question: {question}\nAnswer:")
}

/// Formats an answer as the completion the student learns after
/// [`student_prompt`]: a space, then the answer.
pub fn student_completion(answer: &str) -> String {
    format!(" {answer}")
}
