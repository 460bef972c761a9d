//! `llm2llm serve`: an OpenAI-compatible chat server over the student engine,
//! so an offline checkpoint can act as the teacher and a fine-tuned student
//! can be queried with any OpenAI client.
//!
//! `api` owns the HTTP routes and bodies, `template` the chat prompt format,
//! `batch` the generation back end and the worker that batches requests.
//! Generation is greedy and non-streaming.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use crate::student::{DType, DeviceKind, LoadOptions, Student};

pub mod api;
pub mod batch;
pub mod template;

pub use api::{AppState, router};
pub use batch::{Batcher, ChatBackend, StudentBackend};
pub use template::ChatTemplate;

/// Requests that may wait for the generation worker before new ones get a 503.
const QUEUE_CAPACITY: usize = 256;

/// Command-line arguments of `llm2llm serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Routes: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, GET /health.

Generation is greedy: temperature, top_p and seed are accepted and ignored, and \
requests with stream=true or n>1 are rejected with a 400. The chat template comes \
from the checkpoint (chat_template.jinja or tokenizer_config.json); a checkpoint \
without one gets a plain \"System: / User: / Assistant:\" format.

The first line on stdout is the API base URL, e.g. http://127.0.0.1:8000/v1. \
Ctrl-C stops the server after the requests in progress finish.")]
pub struct ServeArgs {
    /// Hugging Face checkpoint directory (config.json, tokenizer.json, safetensors weights).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// PEFT LoRA adapter directory to apply to the model.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,

    /// Address to listen on. The server has no authentication, so keep the
    /// default loopback address unless the network is trusted.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// TCP port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,

    /// Model id clients send and `/v1/models` lists [default: the model folder's name].
    #[arg(long)]
    pub model_name: Option<String>,

    /// Completion tokens for requests that set no max_tokens (lowered to what
    /// the context leaves).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub default_max_tokens: u64,

    /// Maximum number of prompts decoded together in one batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,

    /// Floating-point type of the weights and activations.
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    pub dtype: DTypeArg,

    /// Device to run on; cuda and metal need llm2llm built with that feature.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DTypeArg {
    F32,
    Bf16,
    F16,
}

/// `--device` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Metal,
}

impl From<DTypeArg> for DType {
    fn from(value: DTypeArg) -> Self {
        match value {
            DTypeArg::F32 => DType::F32,
            DTypeArg::Bf16 => DType::Bf16,
            DTypeArg::F16 => DType::F16,
        }
    }
}

impl From<DeviceArg> for DeviceKind {
    fn from(value: DeviceArg) -> Self {
        match value {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
            DeviceArg::Metal => DeviceKind::Metal,
        }
    }
}

/// Runs `llm2llm serve` until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.model.is_dir() {
        anyhow::bail!(
            "--model {}: not a directory; pass a Hugging Face checkpoint directory",
            args.model.display()
        );
    }
    if let Some(adapter) = &args.adapter
        && !adapter.is_dir()
    {
        anyhow::bail!(
            "--adapter {}: not a directory; pass a PEFT adapter directory",
            adapter.display()
        );
    }
    let model_id = match &args.model_name {
        Some(name) => name.clone(),
        None => folder_name(&args.model)?,
    };

    let tokenizer_path = args.model.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|err| anyhow::anyhow!("failed to load {}: {err}", tokenizer_path.display()))?;
    let template = ChatTemplate::load(&args.model, tokenizer_adds_prefix(&tokenizer))?;
    match template.source_path() {
        Some(path) => tracing::info!("chat template from {}", path.display()),
        None => tracing::info!(
            "no chat template in the checkpoint; using the plain System/User/Assistant format"
        ),
    }
    let context_length = read_context_length(&args.model)?;

    let student = load_student(&args).await?;
    let backend: Arc<dyn ChatBackend> =
        Arc::new(StudentBackend::new(student, tokenizer, context_length));

    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("failed to listen on {}:{}", args.host, args.port))?;
    let address = listener
        .local_addr()
        .context("failed to read the listening address")?;
    if !address.ip().is_loopback() {
        tracing::warn!(
            "listening on {address}, which is not loopback: anyone who can reach it can use the model"
        );
    }

    let batch_size = usize::try_from(args.batch_size).context("--batch-size is too large")?;
    let default_max_tokens =
        usize::try_from(args.default_max_tokens).context("--default-max-tokens is too large")?;
    let state = Arc::new(AppState {
        model_id: model_id.clone(),
        template,
        batcher: Batcher::spawn(Arc::clone(&backend), batch_size, QUEUE_CAPACITY),
        backend,
        default_max_tokens,
        started_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });

    announce(address).await?;
    tracing::info!("serving `{model_id}` at http://{address}/v1 (greedy decoding)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Loads the student and its adapter on the blocking pool, since loading
/// reads and converts the whole checkpoint.
async fn load_student(args: &ServeArgs) -> anyhow::Result<Student> {
    let model = args.model.clone();
    let adapter = args.adapter.clone();
    let options = LoadOptions {
        dtype: args.dtype.into(),
        device: args.device.into(),
    };
    tracing::debug!(?options, model = %model.display(), "loading the student");
    tokio::task::spawn_blocking(move || -> anyhow::Result<Student> {
        let mut student = Student::load(&model, &options)
            .with_context(|| format!("failed to load the model from {}", model.display()))?;
        if let Some(adapter) = adapter {
            student.load_adapter(&adapter).with_context(|| {
                format!("failed to load the adapter from {}", adapter.display())
            })?;
        }
        Ok(student)
    })
    .await
    .context("the model loading task panicked")?
}

/// Prints the API base URL as the first line on stdout, where scripts and
/// tests wait for it, and flushes so that a reader on a pipe gets it at once.
async fn announce(address: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("http://{address}/v1\n").as_bytes())
        .await
        .context("failed to write the address to stdout")?;
    stdout
        .flush()
        .await
        .context("failed to write the address to stdout")
}

/// Returns the last component of `dir`, resolved first so that `.` and
/// `model/` give the real folder name.
fn folder_name(dir: &Path) -> anyhow::Result<String> {
    let resolved = dir
        .canonicalize()
        .with_context(|| format!("failed to resolve --model {}", dir.display()))?;
    resolved
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .with_context(|| {
            format!(
                "--model {} has no folder name; pass --model-name",
                dir.display()
            )
        })
}

/// Checks whether encoding adds tokens of its own, as LLaMA's post-processor
/// prepends bos. If so, a bos written by the chat template would be encoded twice.
fn tokenizer_adds_prefix(tokenizer: &tokenizers::Tokenizer) -> bool {
    tokenizer
        .encode("", true)
        .map(|encoding| !encoding.get_ids().is_empty())
        .unwrap_or(false)
}

/// Reads `max_position_embeddings` from the checkpoint's `config.json`, if present.
fn read_context_length(model_dir: &Path) -> anyhow::Result<Option<usize>> {
    let path = model_dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match config.get("max_position_embeddings") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => {
            let length = value.as_u64().with_context(|| {
                format!(
                    "{}: field `max_position_embeddings` must be a positive integer",
                    path.display()
                )
            })?;
            Ok(Some(usize::try_from(length).unwrap_or(usize::MAX)))
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there are Unix signals.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("failed to listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("failed to listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in progress");
}
