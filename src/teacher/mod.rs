//! The teacher: an OpenAI-compatible chat client that writes new training
//! examples from the seed examples the student missed, with prompts from
//! `configs/`, parsing and validation of replies, and a durable journal of
//! every call in the run database.
//!
//! This file is the facade the rest of llm2llm uses. The signatures below are
//! the contract between the teacher and its callers (`driver`, `baseline`);
//! the bodies are filled in by the teacher work.

use std::path::PathBuf;


use serde::{Deserialize, Serialize};

/// Teacher settings. The API key itself is never stored here: only the name
/// of the environment variable that holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TeacherConfig {
    /// OpenAI-compatible base URL, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// Environment variable holding the API key; unset means no key is sent.
    pub api_key_env: String,
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    pub seed: Option<i64>,
    /// Per-attempt request timeout, seconds.
    pub timeout_secs: f64,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub max_concurrent: usize,
    /// 0 disables the limit.
    pub requests_per_minute: u32,
    /// 0 disables the limit.
    pub tokens_per_minute: u32,
    /// USD per million prompt and completion tokens, for cost reports.
    pub price_prompt_per_million: f64,
    pub price_completion_per_million: f64,
    /// New examples requested per missed seed example.
    pub examples_per_call: usize,
    /// Whether the prompt shows the student's wrong answer.
    pub show_student_answer: bool,
    /// Prompt template files (system and user), editable by users.
    pub system_prompt: PathBuf,
    pub user_prompt: PathBuf,
    /// ROUGE-L F1 above which a new question counts as a near copy.
    pub rouge_threshold: f64,
}

/// A seed example to augment, as the driver passes it in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AugmentRequest {
    /// `examples.id` of a seed example (the database rejects anything else).
    pub seed_example_id: i64,
    pub question: String,
    pub answer: String,
    /// The student's wrong output, shown when `show_student_answer` is set.
    pub student_output: Option<String>,
    pub sample_index: u32,
}

/// A generated example that passed every check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GeneratedExample {
    pub question: String,
    pub answer: String,
}

/// The outcome of one journaled call.
#[derive(Debug, Clone)]
pub struct AugmentOutcome {
    pub seed_example_id: i64,
    /// `teacher_calls.id`.
    pub call_id: i64,
    /// Parsed items that passed the per-item checks, in reply order; the
    /// near-copy check against the run happens in `Validator`.
    pub items: Vec<GeneratedExample>,
    /// Rejected items by reason (reason, item text).
    pub rejected: Vec<(String, String)>,
    /// Set when the call failed after all attempts.
    pub error: Option<String>,
    /// True when the response came from the journal instead of the API.
    pub from_journal: bool,
}
