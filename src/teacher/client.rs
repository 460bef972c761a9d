//! The HTTP side of the teacher: chat completions through async-openai
//! against any OpenAI-compatible base URL, with the retry, timeout and rate
//! policy in one place (`RetryPolicy`, `ChatClient::complete`).
//!
//! async-openai 0.43 wraps its default HTTP executor in a retry layer (429,
//! 5xx and connect errors, three retries) and sets no timeout. Stacked under
//! our loop that would multiply attempts and hide them from the journal, so
//! each attempt goes through `with_http_service` with a plain tower service
//! over reqwest: no retries below us, and the service records the status
//! and `Retry-After` headers that async-openai's error type drops.
//!
//! The API key is read from the environment once, kept only inside
//! async-openai's `SecretString`, and removed from every error text this
//! module produces.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    FinishReason,
};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::{TeacherConfig, TeacherError};

/// Sampling settings of a request, as journaled and hashed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SamplingSettings {
    pub model: String,
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    pub seed: Option<i64>,
}

/// A completed reply, as journaled before parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    /// The message content, or the refusal text when the API returned a
    /// refusal instead of content.
    pub text: String,
    /// `stop`, `length`, `content_filter`, ... as the API spells it.
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
}

/// Backoff settings between attempts. Defaults suit a hosted API; tests
/// use milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay before the second attempt; it doubles per attempt.
    pub initial: Duration,
    /// Cap on the exponential delay.
    pub max: Duration,
    /// Cap on a server's `Retry-After`, so a large value cannot stall a run.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// The retry and timeout policy: which failures are retried, and how long to
/// wait before the next attempt.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Limit on one attempt, connection and body included.
    pub timeout: Duration,
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`: the server's `Retry-After` when
    /// given (capped), else exponential backoff with jitter drawn from
    /// [delay/2, delay] so parallel calls do not retry in lockstep.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(retry_after) = retry_after {
            return retry_after.min(self.backoff.max_retry_after);
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self
            .backoff
            .initial
            .saturating_mul(1u32 << exponent)
            .min(self.backoff.max);
        let fraction = rand::rng().random_range(0.5..=1.0);
        full.mul_f64(fraction)
    }
}

/// How one failed attempt affects the call and the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: try again after a delay.
    Retry,
    /// This request cannot succeed (e.g. HTTP 400), but others may.
    FailCall,
    /// No request can succeed until the configuration is fixed (HTTP
    /// 401/403/404, an invalid base URL).
    StopBatch,
}

/// What went wrong in one attempt. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptFailure {
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    Timeout(Duration),
    /// Connection refused or dropped, or the body could not be read.
    Transport(String),
    /// A success status with a body that is not a chat completion.
    InvalidResponse(String),
    /// The request could not be built or sent at all (invalid base URL).
    Request(String),
}

impl AttemptFailure {
    pub fn disposition(&self) -> Disposition {
        match self {
            AttemptFailure::Status { status, .. } => match *status {
                401 | 403 | 404 => Disposition::StopBatch,
                408 | 409 | 425 | 429 => Disposition::Retry,
                500..=599 => Disposition::Retry,
                _ => Disposition::FailCall,
            },
            AttemptFailure::Timeout(_)
            | AttemptFailure::Transport(_)
            | AttemptFailure::InvalidResponse(_) => Disposition::Retry,
            AttemptFailure::Request(_) => Disposition::StopBatch,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            AttemptFailure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptFailure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn short(&self) -> String {
        match self {
            AttemptFailure::Status { status, message, .. } => format!("HTTP {status}: {message}"),
            AttemptFailure::Timeout(limit) => format!("timed out after {:.3} s", limit.as_secs_f64()),
            AttemptFailure::Transport(message) => format!("connection failed: {message}"),
            AttemptFailure::InvalidResponse(message) => {
                format!("invalid response body: {message}")
            }
            AttemptFailure::Request(message) => format!("request failed: {message}"),
        }
    }
}

/// One HTTP attempt, as journaled in `teacher_attempts`.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// 1-based, counted over the call's whole life (a resumed call goes on
    /// from where it stopped).
    pub attempt: u32,
    pub http_status: Option<u16>,
    /// `ok`, `retry` or `fatal` (no further attempt).
    pub outcome: &'static str,
    pub error: Option<String>,
    pub latency: Duration,
    /// Delay before the next attempt, for retried attempts.
    pub retry_delay: Option<Duration>,
}

/// A call that got its reply.
#[derive(Debug, Clone)]
pub struct Completion {
    pub reply: ChatReply,
    /// Attempts made for the call so far, earlier sessions included.
    pub attempts: u32,
    /// Latency of the successful attempt.
    pub latency: Duration,
}

/// Why a call ended without a reply.
#[derive(Debug)]
pub enum CallFailure<E> {
    /// This call failed; the batch goes on.
    Failed { message: String, attempts: u32 },
    /// The configuration is wrong; the batch stops.
    Fatal { message: String, attempts: u32 },
    /// Recording an attempt failed.
    Journal(E),
}

/// Requests-per-minute or tokens-per-minute limit as a token bucket that
/// starts full and refills continuously.
#[derive(Debug)]
struct RateBucket {
    capacity: f64,
    available: f64,
    per_second: f64,
    updated: Instant,
}

impl RateBucket {
    fn per_minute(limit: u32) -> Option<Mutex<Self>> {
        (limit > 0).then(|| {
            Mutex::new(Self {
                capacity: f64::from(limit),
                available: f64::from(limit),
                per_second: f64::from(limit) / 60.0,
                updated: Instant::now(),
            })
        })
    }

    /// Takes `amount` (capped at the capacity, so an oversized request
    /// waits for a full bucket instead of forever), or returns how long to
    /// wait before trying again.
    fn try_take(&mut self, amount: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        let amount = amount.min(self.capacity);
        if self.available >= amount {
            self.available -= amount;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((amount - self.available) / self.per_second))
        }
    }
}

async fn take_from(bucket: &Option<Mutex<RateBucket>>, amount: f64) {
    let Some(bucket) = bucket else {
        return;
    };
    loop {
        let wait = {
            let mut guard = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.try_take(amount) {
                Ok(()) => return,
                Err(wait) => wait,
            }
        };
        debug!(wait_ms = wait.as_millis() as u64, "waiting for the teacher rate limit");
        tokio::time::sleep(wait).await;
    }
}

/// Status and retry headers of the last HTTP response, filled in by the
/// transport service because async-openai's errors do not carry headers.
#[derive(Debug, Clone, Default)]
struct ResponseHead {
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
}

/// An OpenAI-compatible chat client with our retry policy and limits.
pub struct ChatClient {
    http: reqwest::Client,
    openai: OpenAIConfig,
    base_url: String,
    api_key_env: String,
    /// The key, only to remove it from error texts; `None` when unset.
    api_key: Option<String>,
    policy: RetryPolicy,
    concurrency: Semaphore,
    requests_per_minute: Option<Mutex<RateBucket>>,
    tokens_per_minute: Option<Mutex<RateBucket>>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// Builds a client from the teacher settings, reading the API key from
    /// the environment variable the settings name.
    pub fn new(config: &TeacherConfig, backoff: Backoff) -> Result<Self, TeacherError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url).map_err(|error| TeacherError::Config {
            field: "base_url",
            message: format!(
                "`{base_url}` is not a valid URL ({error}); use e.g. http://127.0.0.1:8000/v1"
            ),
        })?;
        let api_key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|key| !key.trim().is_empty());
        if api_key.is_none() {
            debug!(env = %config.api_key_env, "no teacher API key set; sending requests without one");
        }
        // The key is set explicitly (empty when unset) because
        // OpenAIConfig's default silently reads OPENAI_API_KEY, which would
        // bypass the configured variable.
        let openai = OpenAIConfig::new()
            .with_api_base(base_url.clone())
            .with_api_key(api_key.clone().unwrap_or_default());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs_f64(config.timeout_secs.min(30.0)))
            .build()
            .map_err(|error| TeacherError::Config {
                field: "base_url",
                message: format!("failed to build the HTTP client: {error}"),
            })?;
        Ok(Self {
            http,
            openai,
            base_url,
            api_key_env: config.api_key_env.clone(),
            api_key,
            policy: RetryPolicy {
                max_attempts: config.max_attempts,
                timeout: Duration::from_secs_f64(config.timeout_secs),
                backoff,
            },
            concurrency: Semaphore::new(config.max_concurrent),
            requests_per_minute: RateBucket::per_minute(config.requests_per_minute),
            tokens_per_minute: RateBucket::per_minute(config.tokens_per_minute),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Builds the request body for a system and a user message.
    pub fn build_request(
        settings: &SamplingSettings,
        system: &str,
        user: &str,
    ) -> CreateChatCompletionRequest {
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user).into(),
        ];
        // `max_tokens` rather than `max_completion_tokens`, because local
        // servers (llama.cpp, older vLLM) read only the older field; `seed`
        // is deprecated by OpenAI but still honoured by local servers.
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            model: settings.model.clone(),
            messages,
            temperature: Some(settings.temperature),
            top_p: Some(settings.top_p),
            max_tokens: Some(settings.max_tokens),
            seed: settings.seed,
            ..Default::default()
        }
    }

    /// Sends `request` until it succeeds, fails for good, or runs out of
    /// attempts, reporting each attempt to `on_attempt` before the next one
    /// starts. `previous_attempts` is how many attempts an interrupted run
    /// already made for this call; the attempt limit applies per run.
    ///
    /// `stop` is shared by the calls of one batch. A failure that no retry
    /// can fix sets it, and from then on the other calls send nothing and
    /// never complete: the caller drops them once the failing call returns
    /// its `Fatal` error.
    pub async fn complete<E>(
        &self,
        request: &CreateChatCompletionRequest,
        previous_attempts: u32,
        stop: &AtomicBool,
        mut on_attempt: impl AsyncFnMut(AttemptRecord) -> Result<(), E>,
    ) -> Result<Completion, CallFailure<E>> {
        let estimated_tokens = estimate_tokens(request);
        let mut attempt = previous_attempts;
        for try_number in 1..=self.policy.max_attempts.max(1) {
            attempt += 1;
            take_from(&self.requests_per_minute, 1.0).await;
            take_from(&self.tokens_per_minute, estimated_tokens).await;
            let started = Instant::now();
            let result = {
                // The semaphore is never closed, so acquire cannot fail.
                let permit = self.concurrency.acquire().await;
                if stop.load(Ordering::SeqCst) {
                    drop(permit);
                    std::future::pending::<()>().await;
                }
                self.send_once(request).await
            };
            let latency = started.elapsed();
            let failure = match result {
                Ok(reply) => {
                    let record = AttemptRecord {
                        attempt,
                        http_status: Some(200),
                        outcome: "ok",
                        error: None,
                        latency,
                        retry_delay: None,
                    };
                    on_attempt(record).await.map_err(CallFailure::Journal)?;
                    return Ok(Completion {
                        reply,
                        attempts: attempt,
                        latency,
                    });
                }
                Err(failure) => failure,
            };
            let disposition = failure.disposition();
            if disposition == Disposition::StopBatch {
                stop.store(true, Ordering::SeqCst);
            }
            let last = try_number >= self.policy.max_attempts;
            let retry = disposition == Disposition::Retry && !last;
            let delay = retry.then(|| self.policy.delay(try_number, failure.retry_after()));
            let record = AttemptRecord {
                attempt,
                http_status: failure.http_status(),
                outcome: if retry { "retry" } else { "fatal" },
                error: Some(failure.short()),
                latency,
                retry_delay: delay,
            };
            on_attempt(record).await.map_err(CallFailure::Journal)?;
            match (disposition, delay) {
                (Disposition::Retry, Some(delay)) => {
                    warn!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %failure.short(),
                        "teacher request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                (Disposition::StopBatch, _) => {
                    return Err(CallFailure::Fatal {
                        message: self.explain(&failure, &request.model),
                        attempts: attempt,
                    });
                }
                _ => {
                    let mut message = self.explain(&failure, &request.model);
                    if disposition == Disposition::Retry {
                        message = format!(
                            "{message} (gave up after {} attempts)",
                            self.policy.max_attempts
                        );
                    }
                    return Err(CallFailure::Failed {
                        message,
                        attempts: attempt,
                    });
                }
            }
        }
        unreachable!("the attempt loop returns on its last attempt")
    }

    /// One attempt with the per-attempt timeout, through async-openai with
    /// no retry layer.
    async fn send_once(&self, request: &CreateChatCompletionRequest) -> Result<ChatReply, AttemptFailure> {
        let head = Arc::new(Mutex::new(ResponseHead::default()));
        let http = self.http.clone();
        let head_slot = Arc::clone(&head);
        let api_key = self.api_key.clone();
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            let head_slot = Arc::clone(&head_slot);
            let api_key = api_key.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                {
                    let mut slot = head_slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    slot.status = Some(response.status());
                    slot.retry_after = parse_retry_after(response.headers());
                }
                redact_body(response, api_key.as_deref()).await
            }
        });
        let client = Client::build(self.http.clone(), self.openai.clone()).with_http_service(service);
        let outcome = tokio::time::timeout(self.policy.timeout, client.chat().create(request.clone())).await;
        let head = head.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match outcome {
            Err(_) => Err(AttemptFailure::Timeout(self.policy.timeout)),
            Ok(Ok(response)) => Ok(reply_from(response)),
            Ok(Err(error)) => Err(self.classify(error, &head)),
        }
    }

    fn classify(&self, error: OpenAIError, head: &ResponseHead) -> AttemptFailure {
        let status = head.status.filter(|status| !status.is_success());
        match (error, status) {
            (OpenAIError::ApiError(api), _) => AttemptFailure::Status {
                status: api.status_code.as_u16(),
                message: self.redact(&api.api_error.to_string()),
                retry_after: head.retry_after,
            },
            // A non-JSON error body: async-openai reports a deserialisation
            // error and drops the status, which the transport recorded.
            (OpenAIError::JSONDeserialize(_, content), Some(status)) => AttemptFailure::Status {
                status: status.as_u16(),
                message: self.redact(&truncate(&content, 300)),
                retry_after: head.retry_after,
            },
            (OpenAIError::JSONDeserialize(error, content), None) => AttemptFailure::InvalidResponse(
                self.redact(&format!("{error}; body starts with {:?}", truncate(&content, 200))),
            ),
            (OpenAIError::Reqwest(error), _) if error.is_builder() => {
                AttemptFailure::Request(self.redact(&error_chain(&error)))
            }
            (OpenAIError::Reqwest(error), _) if error.is_timeout() => {
                AttemptFailure::Timeout(self.policy.timeout)
            }
            (OpenAIError::Reqwest(error), _) => AttemptFailure::Transport(self.redact(&error_chain(&error))),
            (other, _) => AttemptFailure::Request(self.redact(&other.to_string())),
        }
    }

    /// The message for a call that finally failed, saying what to fix.
    fn explain(&self, failure: &AttemptFailure, model: &str) -> String {
        let base = &self.base_url;
        let env = &self.api_key_env;
        let key_state = if self.api_key.is_some() {
            format!("the key in the environment variable {env}")
        } else {
            format!("no key (the environment variable {env} is not set)")
        };
        match failure {
            AttemptFailure::Status { status: 401, message, .. } => format!(
                "the teacher API at {base} rejected {key_state} (HTTP 401: {message}); set {env} to a valid API key"
            ),
            AttemptFailure::Status { status: 403, message, .. } => format!(
                "the teacher API at {base} denied access with {key_state} (HTTP 403: {message}); check that the key may use the model `{model}`"
            ),
            AttemptFailure::Status { status: 404, message, .. } => format!(
                "the teacher API returned HTTP 404 for {base}/chat/completions ({message}); check the base URL (it usually ends in /v1) and the model name `{model}`"
            ),
            AttemptFailure::Status { status: 400, message, .. } => format!(
                "the teacher API at {base} rejected the request as invalid (HTTP 400: {message}); check the model name `{model}` and the sampling settings (temperature, top_p, max_tokens, seed)"
            ),
            AttemptFailure::Request(message) => format!(
                "could not send a request to the teacher API at {base} ({message}); check the base URL"
            ),
            other => format!("the teacher API at {base} failed: {}", other.short()),
        }
    }

    /// Replaces every occurrence of the API key in `text`.
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if text.contains(key.as_str()) => text.replace(key.as_str(), "[redacted]"),
            _ => text.to_owned(),
        }
    }
}

/// Reads the whole body and removes the API key from it. async-openai logs
/// error bodies (at WARN for 5xx, at ERROR when they are not JSON), and a
/// server that echoes the request's Authorization header would otherwise
/// put the key in the logs and the journal.
async fn redact_body(response: reqwest::Response, api_key: Option<&str>) -> Result<reqwest::Response, OpenAIError> {
    let Some(key) = api_key else {
        return Ok(response);
    };
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(OpenAIError::Reqwest)?;
    let body = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains(key) => text.replace(key, "[redacted]").into_bytes(),
        _ => bytes.to_vec(),
    };
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    // The body length may have changed; the HTTP layer recomputes it.
    rebuilt.headers_mut().remove(http::header::CONTENT_LENGTH);
    Ok(reqwest::Response::from(rebuilt))
}

fn reply_from(response: CreateChatCompletionResponse) -> ChatReply {
    let usage = response.usage.as_ref();
    let choice = response.choices.into_iter().next();
    let (text, finish_reason) = match choice {
        Some(choice) => {
            let text = choice
                .message
                .content
                .or(choice.message.refusal)
                .unwrap_or_default();
            (text, choice.finish_reason.map(finish_reason_name))
        }
        None => (String::new(), None),
    };
    ChatReply {
        text,
        finish_reason,
        prompt_tokens: usage.map(|usage| i64::from(usage.prompt_tokens)),
        completion_tokens: usage.map(|usage| i64::from(usage.completion_tokens)),
    }
}

fn finish_reason_name(reason: FinishReason) -> String {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
    .to_owned()
}

/// Reads `retry-after-ms` (milliseconds, sent by OpenAI and Azure) or
/// `Retry-After` in seconds.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|value| value.is_finite() && *value >= 0.0)
    };
    // NOTE: the HTTP-date form of Retry-After is not read; such a reply
    // falls back to exponential backoff.
    read("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| read(RETRY_AFTER.as_str()).map(Duration::from_secs_f64))
}

/// Rough token count for the tokens-per-minute limit: about four characters
/// per token for English prompts, plus the completion budget.
fn estimate_tokens(request: &CreateChatCompletionRequest) -> f64 {
    let characters = serde_json::to_string(&request.messages)
        .map(|json| json.len())
        .unwrap_or(0);
    #[allow(deprecated)]
    let max_tokens = request.max_tokens.unwrap_or(0);
    characters as f64 / 4.0 + f64::from(max_tokens)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            timeout: Duration::from_secs(1),
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_millis(300),
                max_retry_after: Duration::from_secs(2),
            },
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy = policy();
        let first = policy.delay(1, None);
        let third = policy.delay(3, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let policy = policy();
        assert_eq!(policy.delay(1, Some(Duration::from_millis(700))), Duration::from_millis(700));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_millis(150)));
    }

    #[test]
    fn status_dispositions() {
        let status = |status| AttemptFailure::Status {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(status(429).disposition(), Disposition::Retry);
        assert_eq!(status(503).disposition(), Disposition::Retry);
        assert_eq!(status(400).disposition(), Disposition::FailCall);
        assert_eq!(status(401).disposition(), Disposition::StopBatch);
        assert_eq!(status(404).disposition(), Disposition::StopBatch);
    }

    #[test]
    fn rate_bucket_waits_when_empty() {
        let bucket = RateBucket::per_minute(60).unwrap();
        let mut bucket = bucket.into_inner().unwrap();
        assert_eq!(bucket.try_take(60.0), Ok(()));
        let wait = bucket.try_take(1.0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
    }
}
