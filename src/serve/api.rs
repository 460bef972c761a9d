//! The OpenAI-compatible HTTP surface: request and response bodies of
//! `POST /v1/chat/completions` and `GET /v1/models`, their validation, and
//! errors in OpenAI's `{"error": {"message", "type", "param", "code"}}` shape.
//!
//! Only what greedy, non-streaming generation can honour is accepted:
//! `stream: true`, `n > 1` and tools are rejected with a 400. Sampling fields
//! (`temperature`, `top_p`, `seed`, penalties) are accepted and ignored,
//! because the student decodes greedily. Unknown fields are ignored, as
//! OpenAI-compatible servers commonly do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::batch::{BatchError, Batcher, ChatBackend, GenerateSettings};
use super::template::{ChatMessage, ChatTemplate};

/// Everything the handlers share.
pub struct AppState {
    /// Model id clients send as `model` and see in `/v1/models`.
    pub model_id: String,
    pub template: ChatTemplate,
    pub backend: Arc<dyn ChatBackend>,
    pub batcher: Batcher,
    /// Completion tokens when a request sets neither `max_tokens` nor
    /// `max_completion_tokens`; lowered to what the context leaves.
    pub default_max_tokens: usize,
    /// Unix time (seconds) the server started, reported as the model's `created`.
    pub started_at: u64,
}

/// Builds the routes `/v1/models`, `/v1/models/{id}`, `/v1/chat/completions`
/// and `/health`. Any other path or method gets a 404 or 405 in OpenAI's
/// error shape.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(retrieve_model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/health", get(health))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Errors

/// An error response in OpenAI's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl ApiError {
    fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    fn unsupported(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param),
            code: Some("unsupported_value"),
            ..Self::invalid_request(message)
        }
    }

    fn server_error(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, error = %self.message, "request rejected");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: Some("unknown_url"),
        ..ApiError::invalid_request(format!(
            "unknown URL ({method} {}); this server offers GET /v1/models and POST /v1/chat/completions",
            uri.path()
        ))
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: Some("method_not_allowed"),
        ..ApiError::invalid_request(format!("method {method} is not allowed on {}", uri.path()))
    }
}

// ---------------------------------------------------------------------------
// Models

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<ModelObject>,
}

#[derive(Serialize)]
struct ModelObject {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

fn model_object(state: &AppState) -> ModelObject {
    ModelObject {
        id: state.model_id.clone(),
        object: "model",
        created: state.started_at,
        owned_by: "llm2llm",
    }
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![model_object(&state)],
    })
}

async fn retrieve_model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    check_model(&state, &id)?;
    Ok(Json(model_object(&state)))
}

async fn health() -> &'static str {
    "ok"
}

fn check_model(state: &AppState, requested: &str) -> Result<(), ApiError> {
    if requested == state.model_id {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::NOT_FOUND,
        param: Some("model"),
        code: Some("model_not_found"),
        ..ApiError::invalid_request(format!(
            "the model `{requested}` does not exist; this server serves `{}`",
            state.model_id
        ))
    })
}

// ---------------------------------------------------------------------------
// Chat completions: request

/// The fields of a chat completion request that this server reads.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<RequestMessage>,
    pub max_tokens: Option<u64>,
    /// OpenAI's newer name for `max_tokens`; it wins when both are set.
    pub max_completion_tokens: Option<u64>,
    pub stop: Option<StopField>,
    pub stream: Option<bool>,
    pub n: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub tools: Option<Vec<serde_json::Value>>,
    pub logprobs: Option<bool>,
}

/// `stop` is one string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct RequestMessage {
    pub role: String,
    pub content: Option<MessageContent>,
}

/// Message content: a string, or a list of content parts of which only
/// `text` parts are supported.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// Most stop strings per request, as OpenAI allows.
const MAX_STOP_STRINGS: usize = 4;

/// Converts request messages to template messages, validating roles and content.
fn chat_messages(messages: Vec<RequestMessage>) -> Result<Vec<ChatMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError {
            param: Some("messages"),
            ..ApiError::invalid_request("`messages` is empty; send at least one message")
        });
    }
    let mut chat = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(ApiError::unsupported(
                    "messages",
                    format!(
                        "messages[{index}].role `{other}` is not supported; \
                         use system, developer, user or assistant"
                    ),
                ));
            }
        };
        let content = match message.content {
            None => {
                return Err(ApiError {
                    param: Some("messages"),
                    ..ApiError::invalid_request(format!("messages[{index}].content is missing"))
                });
            }
            Some(MessageContent::Text(text)) => text,
            Some(MessageContent::Parts(parts)) => text_of_parts(index, parts)?,
        };
        chat.push(ChatMessage {
            role: role.to_string(),
            content,
        });
    }
    Ok(chat)
}

fn text_of_parts(index: usize, parts: Vec<ContentPart>) -> Result<String, ApiError> {
    let mut text = String::new();
    for part in parts {
        match (part.kind.as_str(), part.text) {
            ("text", Some(part_text)) => text.push_str(&part_text),
            ("text", None) => {
                return Err(ApiError {
                    param: Some("messages"),
                    ..ApiError::invalid_request(format!(
                        "messages[{index}].content has a text part without `text`"
                    ))
                });
            }
            (other, _) => {
                return Err(ApiError::unsupported(
                    "messages",
                    format!(
                        "messages[{index}].content has a `{other}` part; only text parts are supported"
                    ),
                ));
            }
        }
    }
    Ok(text)
}

/// Rejects what this server cannot honour and logs the ignored sampling fields.
fn check_supported(request: &ChatCompletionRequest) -> Result<(), ApiError> {
    if request.stream == Some(true) {
        return Err(ApiError::unsupported(
            "stream",
            "streaming is not supported; send the request with `stream` false or absent",
        ));
    }
    if let Some(n) = request.n
        && n != 1
    {
        return Err(ApiError::unsupported(
            "n",
            format!("`n` = {n} is not supported: greedy decoding gives one choice; use n = 1"),
        ));
    }
    if request
        .tools
        .as_ref()
        .is_some_and(|tools| !tools.is_empty())
    {
        return Err(ApiError::unsupported(
            "tools",
            "tools are not supported by this server",
        ));
    }
    if request.logprobs == Some(true) {
        return Err(ApiError::unsupported(
            "logprobs",
            "`logprobs` is not supported by this server",
        ));
    }
    if request.temperature.is_some() || request.top_p.is_some() || request.seed.is_some() {
        tracing::debug!(
            temperature = ?request.temperature,
            top_p = ?request.top_p,
            seed = ?request.seed,
            "sampling settings ignored: generation is greedy"
        );
    }
    Ok(())
}

fn stop_strings(stop: Option<StopField>) -> Result<Vec<String>, ApiError> {
    let stop = match stop {
        None => Vec::new(),
        Some(StopField::One(text)) => vec![text],
        Some(StopField::Many(list)) => list,
    };
    if stop.len() > MAX_STOP_STRINGS {
        return Err(ApiError {
            param: Some("stop"),
            ..ApiError::invalid_request(format!(
                "`stop` has {} strings; at most {MAX_STOP_STRINGS} are allowed",
                stop.len()
            ))
        });
    }
    if stop.iter().any(String::is_empty) {
        return Err(ApiError {
            param: Some("stop"),
            ..ApiError::invalid_request("`stop` contains an empty string")
        });
    }
    Ok(stop)
}

/// Completion tokens for the request: the one asked for, which must fit in
/// the context, or the server's default lowered to what the context leaves.
fn max_new_tokens(
    state: &AppState,
    request: &ChatCompletionRequest,
    prompt_tokens: usize,
) -> Result<usize, ApiError> {
    let requested = request.max_completion_tokens.or(request.max_tokens);
    let requested = match requested {
        Some(0) => {
            return Err(ApiError {
                param: Some("max_tokens"),
                ..ApiError::invalid_request("`max_tokens` must be at least 1")
            });
        }
        Some(tokens) => Some(usize::try_from(tokens).unwrap_or(usize::MAX)),
        None => None,
    };
    let Some(context_length) = state.backend.context_length() else {
        return Ok(requested.unwrap_or(state.default_max_tokens));
    };
    let left = context_length.saturating_sub(prompt_tokens);
    let context_error = |asked: usize| ApiError {
        param: Some("messages"),
        code: Some("context_length_exceeded"),
        ..ApiError::invalid_request(format!(
            "this model's context is {context_length} tokens, but the request needs \
             {prompt_tokens} prompt tokens plus {asked} completion tokens; \
             shorten the messages or lower max_tokens"
        ))
    };
    match requested {
        Some(tokens) if tokens > left => Err(context_error(tokens)),
        Some(tokens) => Ok(tokens),
        None if left == 0 => Err(context_error(1)),
        None => Ok(state.default_max_tokens.min(left)),
    }
}

// ---------------------------------------------------------------------------
// Chat completions: response

#[derive(Debug, Serialize)]
struct ChatCompletion {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
    choices: Vec<Choice>,
    usage: Usage,
}

#[derive(Debug, Serialize)]
struct Choice {
    index: u32,
    message: AssistantMessage,
    finish_reason: &'static str,
    logprobs: Option<()>,
}

#[derive(Debug, Serialize)]
struct AssistantMessage {
    role: &'static str,
    content: String,
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
}

static COMPLETION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Builds a completion id from the server's start time and a counter, so it
/// is unique within this process and unlikely to repeat across restarts.
fn completion_id(started_at: u64) -> String {
    let sequence = COMPLETION_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("chatcmpl-{started_at:x}{sequence:08x}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChatCompletion>, ApiError> {
    let body = body.map_err(|rejection| ApiError {
        status: rejection.status(),
        ..ApiError::invalid_request(format!(
            "failed to read the request body: {}",
            rejection.body_text()
        ))
    })?;
    let mut request: ChatCompletionRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid chat completion request: {err}"
        ))
    })?;

    check_model(&state, &request.model)?;
    check_supported(&request)?;
    let mut stop = stop_strings(request.stop.take())?;
    let messages = chat_messages(std::mem::take(&mut request.messages))?;
    let prompt = state.template.render(&messages).map_err(|err| ApiError {
        param: Some("messages"),
        ..ApiError::invalid_request(err.to_string())
    })?;
    let prompt_tokens = state.backend.count_tokens(&prompt).map_err(|err| {
        ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}"))
    })?;
    let max_new_tokens = max_new_tokens(&state, &request, prompt_tokens)?;
    stop.extend(state.template.stop_strings());

    let settings = GenerateSettings {
        max_new_tokens,
        stop,
    };
    let generation = state
        .batcher
        .generate(prompt, settings)
        .await
        .map_err(|err| match err {
            BatchError::QueueFull(_) => {
                ApiError::server_error(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            BatchError::WorkerStopped | BatchError::Generate(_) => {
                ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
            }
        })?;

    // The student reports "eos" or "stop" for a natural end, which OpenAI calls "stop".
    let finish_reason = if generation.finish_reason == "length" {
        "length"
    } else {
        "stop"
    };
    let completion_tokens = generation.token_ids.len();
    let id = completion_id(state.started_at);
    tracing::debug!(%id, prompt_tokens, completion_tokens, finish_reason, "chat completion done");
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created: unix_now(),
        model: state.model_id.clone(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: generation.text,
            },
            finish_reason,
            logprobs: None,
        }],
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        },
    }))
}
