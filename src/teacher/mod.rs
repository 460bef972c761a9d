//! The teacher: an OpenAI-compatible chat client that writes new training
//! examples from the seed examples the student missed, with prompts from
//! `configs/`, parsing and validation of replies, and a durable journal of
//! every call in the run database.
//!
//! This file is the facade that `driver` and `baseline` call. The work lives
//! in the submodules: `client` (HTTP, retries and rate limits), `journal`
//! (the `teacher_calls` tables), `prompt`, `parse` and `validate`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use tracing::{info, warn};

pub mod client;
pub mod journal;
pub mod parse;
pub mod prompt;
pub mod validate;

pub use client::Backoff;
pub use journal::TokenUsage;
pub use prompt::{PromptTemplates, Purpose};
pub use validate::{RejectReason, Validator};

use client::{CallFailure, ChatClient, ChatReply, SamplingSettings};
use journal::{CallRow, NewCall, RejectedItem};
use parse::ParsedReply;
use prompt::RenderedPrompt;

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

/// Errors of the teacher. A call that fails after all attempts is not an
/// error here but an `AugmentOutcome` with `error` set. `Api` is for
/// failures that no retry can fix (key, URL, model name).
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    #[error("invalid teacher setting `{field}`: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    #[error("failed to read the prompt template {}", .path.display())]
    PromptRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid prompt template {}{}",
        .path.display(),
        .line.map(|line| format!(" at line {line}")).unwrap_or_default()
    )]
    PromptTemplate {
        path: PathBuf,
        line: Option<usize>,
        #[source]
        source: minijinja::Error,
    },
    #[error("failed to {action} in the teacher journal")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The API rejected the configuration; the batch stopped.
    #[error("{message}")]
    Api { message: String },
}

fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> TeacherError {
    move |source| TeacherError::Database { action, source }
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            api_key_env: "OPENAI_API_KEY".to_owned(),
            temperature: 0.7,
            top_p: 1.0,
            max_tokens: 2048,
            seed: None,
            timeout_secs: 120.0,
            max_attempts: 6,
            max_concurrent: 8,
            requests_per_minute: 0,
            tokens_per_minute: 0,
            price_prompt_per_million: 0.0,
            price_completion_per_million: 0.0,
            examples_per_call: 4,
            show_student_answer: false,
            system_prompt: PathBuf::from("configs/prompts/llm2llm_system.md"),
            user_prompt: PathBuf::from("configs/prompts/llm2llm_user.md"),
            rouge_threshold: 0.95,
        }
    }
}

impl TeacherConfig {
    /// Checks ranges so that a bad value fails before any request is sent.
    pub fn validate(&self) -> Result<(), TeacherError> {
        let invalid =
            |field: &'static str, message: String| Err(TeacherError::Config { field, message });
        if self.base_url.trim().is_empty() {
            return invalid(
                "base_url",
                "is empty; set it to e.g. http://127.0.0.1:8000/v1".into(),
            );
        }
        if self.model.trim().is_empty() {
            return invalid(
                "model",
                "is empty; set it to the model name the server serves".into(),
            );
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return invalid(
                "temperature",
                format!("{} is outside 0..=2", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid("top_p", format!("{} is outside (0, 1]", self.top_p));
        }
        if self.max_tokens == 0 {
            return invalid("max_tokens", "must be at least 1".into());
        }
        if !(self.timeout_secs.is_finite() && self.timeout_secs > 0.0) {
            return invalid(
                "timeout_secs",
                format!("{} is not a positive number of seconds", self.timeout_secs),
            );
        }
        if self.max_attempts == 0 {
            return invalid(
                "max_attempts",
                "must be at least 1 (the first attempt counts)".into(),
            );
        }
        if self.max_concurrent == 0 {
            return invalid("max_concurrent", "must be at least 1".into());
        }
        if self.examples_per_call == 0 {
            return invalid("examples_per_call", "must be at least 1".into());
        }
        if !(self.rouge_threshold > 0.0 && self.rouge_threshold <= 1.0) {
            return invalid(
                "rouge_threshold",
                format!("{} is outside (0, 1]", self.rouge_threshold),
            );
        }
        let prices = [
            ("price_prompt_per_million", self.price_prompt_per_million),
            (
                "price_completion_per_million",
                self.price_completion_per_million,
            ),
        ];
        for (field, price) in prices {
            if !(price.is_finite() && price >= 0.0) {
                return invalid(
                    field,
                    format!("{price} is not a finite, non-negative USD amount"),
                );
            }
        }
        Ok(())
    }

    /// Cost in USD of `usage` at the configured prices per million tokens.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        usage.prompt_tokens as f64 * self.price_prompt_per_million / 1e6
            + usage.completion_tokens as f64 * self.price_completion_per_million / 1e6
    }
}

/// A request rendered and hashed, ready to send or look up.
struct PreparedCall {
    settings: SamplingSettings,
    request_json: String,
    request: async_openai::types::chat::CreateChatCompletionRequest,
    request_key: String,
}

/// Run, iteration and purpose shared by the calls of one batch.
#[derive(Clone, Copy)]
struct BatchContext {
    run_id: i64,
    iteration: i64,
    purpose: Purpose,
}

/// The teacher: renders prompts, calls the API through the journal, and
/// parses and checks replies.
pub struct Teacher {
    config: TeacherConfig,
    pool: SqlitePool,
    client: ChatClient,
    llm2llm_prompts: PromptTemplates,
    auggpt_prompts: PromptTemplates,
}

impl Teacher {
    /// Checks the settings, loads the LLM2LLM prompt files they name and
    /// reads the API key from the environment. AugGPT prompts start as the
    /// built-in copies of `configs/prompts/auggpt_*.md`; see `with_prompts`.
    pub fn new(config: TeacherConfig, pool: SqlitePool) -> Result<Teacher, TeacherError> {
        config.validate()?;
        let llm2llm_prompts = PromptTemplates::load(&config.system_prompt, &config.user_prompt)?;
        let client = ChatClient::new(&config, Backoff::default())?;
        Ok(Teacher {
            config,
            pool,
            client,
            llm2llm_prompts,
            auggpt_prompts: PromptTemplates::builtin(Purpose::AugGpt),
        })
    }

    /// Replaces the prompt templates used for `purpose`.
    pub fn with_prompts(mut self, purpose: Purpose, templates: PromptTemplates) -> Self {
        match purpose {
            Purpose::Llm2llm => self.llm2llm_prompts = templates,
            Purpose::AugGpt => self.auggpt_prompts = templates,
        }
        self
    }

    /// Replaces the backoff between attempts (tests use milliseconds).
    pub fn with_backoff(mut self, backoff: Backoff) -> Result<Self, TeacherError> {
        self.client = ChatClient::new(&self.config, backoff)?;
        Ok(self)
    }

    pub fn config(&self) -> &TeacherConfig {
        &self.config
    }

    /// Token counts of the calls `run_id` paid for.
    pub async fn usage(&self, run_id: i64) -> Result<TokenUsage, TeacherError> {
        journal::run_usage(&self.pool, run_id)
            .await
            .map_err(db("read the token usage"))
    }

    /// Sends one call per request (answered ones come from the journal) and
    /// returns one outcome per request, in request order. A call that fails
    /// after all attempts yields an outcome with `error` set. An error that
    /// no retry can fix (HTTP 401/403/404, an invalid URL) stops the batch
    /// and is returned; calls still in flight then stay `pending` in the
    /// journal and are sent again by the next run.
    pub async fn augment(
        &self,
        run_id: i64,
        iteration: i64,
        purpose: Purpose,
        requests: Vec<AugmentRequest>,
    ) -> Result<Vec<AugmentOutcome>, TeacherError> {
        let context = BatchContext {
            run_id,
            iteration,
            purpose,
        };
        let prepared = requests
            .iter()
            .map(|request| self.prepare(purpose, request))
            .collect::<Result<Vec<_>, _>>()?;

        // Identical requests in one batch are sent once and share the
        // outcome.
        let mut first_with_key: HashMap<&str, usize> = HashMap::new();
        let mut unique = Vec::new();
        let source: Vec<usize> = prepared
            .iter()
            .enumerate()
            .map(|(index, call)| {
                *first_with_key
                    .entry(call.request_key.as_str())
                    .or_insert_with(|| {
                        unique.push(index);
                        index
                    })
            })
            .collect();

        info!(
            run_id,
            iteration,
            purpose = purpose.as_str(),
            calls = unique.len(),
            "starting teacher calls"
        );
        let progress = ProgressBar::new(unique.len() as u64);
        progress.set_style(
            ProgressStyle::with_template("teacher {bar:30} {pos}/{len} calls, {elapsed} elapsed")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let stop = AtomicBool::new(false);
        let calls = unique.iter().map(|&index| {
            let progress = &progress;
            let stop = &stop;
            let request = &requests[index];
            let call = &prepared[index];
            async move {
                let outcome = self.run_call(context, request, call, stop).await;
                progress.inc(1);
                outcome.map(|outcome| (index, outcome))
            }
        });
        let finished = futures::future::try_join_all(calls).await;
        progress.finish_and_clear();
        let finished: HashMap<usize, AugmentOutcome> = finished?.into_iter().collect();

        let mut outcomes = Vec::with_capacity(requests.len());
        for (index, request) in requests.iter().enumerate() {
            let Some(outcome) = finished.get(&source[index]) else {
                unreachable!("every request maps to a call that was run");
            };
            let mut outcome = outcome.clone();
            outcome.seed_example_id = request.seed_example_id;
            outcomes.push(outcome);
        }
        let failed = outcomes
            .iter()
            .filter(|outcome| outcome.error.is_some())
            .count();
        let from_journal = outcomes
            .iter()
            .filter(|outcome| outcome.from_journal)
            .count();
        let items: usize = outcomes.iter().map(|outcome| outcome.items.len()).sum();
        let rejected: usize = outcomes.iter().map(|outcome| outcome.rejected.len()).sum();
        info!(
            run_id,
            iteration, failed, from_journal, items, rejected, "teacher calls done"
        );
        Ok(outcomes)
    }

    fn prepare(
        &self,
        purpose: Purpose,
        request: &AugmentRequest,
    ) -> Result<PreparedCall, TeacherError> {
        let templates = match purpose {
            Purpose::Llm2llm => &self.llm2llm_prompts,
            Purpose::AugGpt => &self.auggpt_prompts,
        };
        let student_answer = match purpose {
            Purpose::Llm2llm if self.config.show_student_answer => {
                request.student_output.as_deref()
            }
            _ => None,
        };
        let prompt: RenderedPrompt = templates.render(
            &request.question,
            &request.answer,
            student_answer,
            self.config.examples_per_call,
        )?;
        // Each sample of the same seed example gets its own sampling seed;
        // with one shared seed, identical prompts would give identical replies.
        let seed = self
            .config
            .seed
            .map(|seed| seed.wrapping_add(i64::from(request.sample_index)));
        let settings = SamplingSettings {
            model: self.config.model.clone(),
            temperature: self.config.temperature,
            top_p: self.config.top_p,
            max_tokens: self.config.max_tokens,
            seed,
        };
        let request_key = journal::request_key(
            &settings,
            &prompt,
            request.seed_example_id,
            request.sample_index,
        );
        let request_body = ChatClient::build_request(&settings, &prompt.system, &prompt.user);
        // Serialising a request of plain fields cannot fail.
        let request_json = serde_json::to_string(&request_body).unwrap_or_default();
        Ok(PreparedCall {
            settings,
            request_json,
            request: request_body,
            request_key,
        })
    }

    /// Runs one call through the journal: reuse an answer, or send it.
    async fn run_call(
        &self,
        context: BatchContext,
        request: &AugmentRequest,
        call: &PreparedCall,
        stop: &AtomicBool,
    ) -> Result<AugmentOutcome, TeacherError> {
        let new_call = NewCall {
            run_id: context.run_id,
            iteration: context.iteration,
            purpose: context.purpose.as_str(),
            seed_example_id: request.seed_example_id,
            sample_index: request.sample_index,
            request_key: &call.request_key,
            model: &call.settings.model,
            base_url: self.client.base_url(),
            request_json: &call.request_json,
        };
        let existing = journal::find_in_run(&self.pool, context.run_id, &call.request_key)
            .await
            .map_err(db("look up a call"))?;
        let (call_id, previous_attempts) = match existing {
            Some(row) if row.status == "ok" => {
                return self.outcome_from_journal(context, request, &row).await;
            }
            Some(row) => {
                if row.status == "failed" {
                    journal::reopen(&self.pool, row.id)
                        .await
                        .map_err(db("reopen a failed call"))?;
                }
                (row.id, u32::try_from(row.attempts).unwrap_or(0))
            }
            None => {
                let answered = journal::find_answered(&self.pool, &call.request_key)
                    .await
                    .map_err(db("look up an answered call"))?;
                if let Some(answered) = answered {
                    let id = journal::insert_copy(&self.pool, &new_call, &answered)
                        .await
                        .map_err(db("copy an answered call"))?;
                    let row = CallRow {
                        id,
                        run_id: context.run_id,
                        attempts: 0,
                        ..answered
                    };
                    return self.outcome_from_journal(context, request, &row).await;
                }
                let id = journal::insert_pending(&self.pool, &new_call)
                    .await
                    .map_err(db("record a new call"))?;
                (id, 0)
            }
        };

        let pool = &self.pool;
        let result = self
            .client
            .complete(&call.request, previous_attempts, stop, async |record| {
                journal::record_attempt(pool, call_id, &record).await
            })
            .await;
        match result {
            Ok(completion) => {
                journal::record_response(
                    &self.pool,
                    call_id,
                    &completion.reply,
                    completion.latency.as_millis() as i64,
                    completion.attempts,
                )
                .await
                .map_err(db("record a response"))?;
                let outcome = self
                    .parse_and_record(context, request, call_id, &completion.reply)
                    .await?;
                Ok(AugmentOutcome {
                    from_journal: false,
                    ..outcome
                })
            }
            Err(CallFailure::Failed { message, attempts }) => {
                warn!(call_id, seed_example_id = request.seed_example_id, error = %message, "teacher call failed");
                journal::record_failure(&self.pool, call_id, &message, attempts)
                    .await
                    .map_err(db("record a failed call"))?;
                Ok(AugmentOutcome {
                    seed_example_id: request.seed_example_id,
                    call_id,
                    items: Vec::new(),
                    rejected: Vec::new(),
                    error: Some(message),
                    from_journal: false,
                })
            }
            Err(CallFailure::Fatal { message, attempts }) => {
                journal::record_failure(&self.pool, call_id, &message, attempts)
                    .await
                    .map_err(db("record a failed call"))?;
                Err(TeacherError::Api { message })
            }
            Err(CallFailure::Journal(source)) => Err(TeacherError::Database {
                action: "record an attempt",
                source,
            }),
        }
    }

    async fn outcome_from_journal(
        &self,
        context: BatchContext,
        request: &AugmentRequest,
        row: &CallRow,
    ) -> Result<AugmentOutcome, TeacherError> {
        let reply = ChatReply {
            text: row.response_text.clone().unwrap_or_default(),
            finish_reason: row.finish_reason.clone(),
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
        };
        let outcome = self
            .parse_and_record(context, request, row.id, &reply)
            .await?;
        Ok(AugmentOutcome {
            from_journal: true,
            ..outcome
        })
    }

    /// Parses a journaled reply, records its rejected items and counts, and
    /// builds the outcome.
    async fn parse_and_record(
        &self,
        context: BatchContext,
        request: &AugmentRequest,
        call_id: i64,
        reply: &ChatReply,
    ) -> Result<AugmentOutcome, TeacherError> {
        let finish_reason = reply.finish_reason.as_deref();
        let parsed: ParsedReply = match context.purpose {
            Purpose::Llm2llm => parse::parse_math_reply(&reply.text, finish_reason),
            Purpose::AugGpt => {
                parse::parse_rephrase_reply(&reply.text, finish_reason, &request.answer)
            }
        };
        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for (reason, _) in &parsed.rejected {
            *by_reason.entry(reason.as_str()).or_default() += 1;
        }
        let parse_json = serde_json::json!({
            "items": parsed.items.len(),
            "rejected": by_reason,
        })
        .to_string();
        let rejected_rows: Vec<RejectedItem<'_>> = parsed
            .rejected
            .iter()
            .map(|(reason, text)| RejectedItem {
                run_id: context.run_id,
                iteration: context.iteration,
                call_id: Some(call_id),
                seed_example_id: Some(request.seed_example_id),
                reason: reason.as_str(),
                text,
            })
            .collect();
        journal::record_parse(&self.pool, call_id, &parse_json, &rejected_rows)
            .await
            .map_err(db("record parse results"))?;
        Ok(AugmentOutcome {
            seed_example_id: request.seed_example_id,
            call_id,
            items: parsed
                .items
                .into_iter()
                .map(|item| GeneratedExample {
                    question: item.question,
                    answer: item.answer,
                })
                .collect(),
            rejected: parsed
                .rejected
                .into_iter()
                .map(|(reason, text)| (reason.as_str().to_owned(), text))
                .collect(),
            error: None,
            from_journal: false,
        })
    }
}
