//! The generation back end behind the server and the worker that feeds it.
//!
//! Generation is CPU-bound and the student decodes a batch of prompts for
//! little more than the cost of one, so one worker task owns the back end.
//! Requests queue on a channel. Each time the worker is free, it takes every
//! queued request and groups those with the same settings. It then runs one
//! `generate` call per group on tokio's blocking pool. Requests that arrive
//! during a call wait for the next round.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::student::{GenerateConfig, Generation, Student};

/// Model interface of the server. The student implements it, and tests use
/// a fake so the HTTP layer is tested without weights.
pub trait ChatBackend: Send + Sync + 'static {
    /// Greedy generation, one result per prompt in order. Blocks the thread.
    fn generate(
        &self,
        prompts: &[String],
        config: &GenerateConfig,
    ) -> anyhow::Result<Vec<Generation>>;

    /// Number of tokens `prompt` encodes to, as `generate` encodes it
    /// (special tokens such as bos included).
    fn count_tokens(&self, prompt: &str) -> anyhow::Result<usize>;

    /// Maximum prompt plus completion tokens, when the checkpoint states it.
    fn context_length(&self) -> Option<usize>;
}

/// The student engine as a back end. Prompt tokens are counted with a second
/// copy of the checkpoint's tokenizer, so that counting never waits for the
/// lock that a running generation holds.
///
/// NOTE: the student stops only on config.json's one `eos_token_id`, and it
/// decodes without special tokens, so a stop string cannot name one either.
/// A chat checkpoint whose turns end with another special token (LLaMA-3's
/// `<|eot_id|>`) therefore runs on to `max_tokens`.
pub struct StudentBackend {
    // `Student` need not be `Sync`; the worker makes one call at a time, so
    // the lock is never contended.
    student: Mutex<Student>,
    tokenizer: tokenizers::Tokenizer,
    context_length: Option<usize>,
}

impl StudentBackend {
    pub fn new(
        student: Student,
        tokenizer: tokenizers::Tokenizer,
        context_length: Option<usize>,
    ) -> Self {
        Self {
            student: Mutex::new(student),
            tokenizer,
            context_length,
        }
    }
}

impl ChatBackend for StudentBackend {
    fn generate(
        &self,
        prompts: &[String],
        config: &GenerateConfig,
    ) -> anyhow::Result<Vec<Generation>> {
        let student = self
            .student
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier generation panicked; restart the server"))?;
        student.generate(prompts, config)
    }

    fn count_tokens(&self, prompt: &str) -> anyhow::Result<usize> {
        let encoding = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|err| anyhow::anyhow!("failed to tokenize the prompt: {err}"))?;
        Ok(encoding.len())
    }

    fn context_length(&self) -> Option<usize> {
        self.context_length
    }
}

/// Per-request settings; requests with equal settings share a batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerateSettings {
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
}

/// Failure of a queued request to get a generation.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the server is overloaded: {0} requests are already waiting; retry later")]
    QueueFull(usize),
    #[error("the generation worker has stopped")]
    WorkerStopped,
    #[error("generation failed: {0}")]
    Generate(String),
}

struct Job {
    prompt: String,
    settings: GenerateSettings,
    reply: oneshot::Sender<Result<Generation, BatchError>>,
}

/// Handle to the generation worker; cloning it shares the same queue.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Job>,
    capacity: usize,
}

impl Batcher {
    /// Starts the worker on the current tokio runtime. It decodes at most
    /// `batch_size` prompts at once and queues at most `queue_capacity`
    /// waiting requests. It stops when the last `Batcher` clone is dropped.
    pub fn spawn(backend: Arc<dyn ChatBackend>, batch_size: usize, queue_capacity: usize) -> Self {
        let (queue, receiver) = mpsc::channel(queue_capacity);
        tokio::spawn(run_worker(backend, batch_size, receiver));
        Self {
            queue,
            capacity: queue_capacity,
        }
    }

    /// Queues one prompt and waits for its generation.
    pub async fn generate(
        &self,
        prompt: String,
        settings: GenerateSettings,
    ) -> Result<Generation, BatchError> {
        let (reply, result) = oneshot::channel();
        self.queue
            .try_send(Job {
                prompt,
                settings,
                reply,
            })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => BatchError::QueueFull(self.capacity),
                mpsc::error::TrySendError::Closed(_) => BatchError::WorkerStopped,
            })?;
        result.await.map_err(|_| BatchError::WorkerStopped)?
    }

    /// Requests queued and not yet taken by the worker.
    pub fn pending(&self) -> usize {
        self.capacity - self.queue.capacity()
    }
}

async fn run_worker(
    backend: Arc<dyn ChatBackend>,
    batch_size: usize,
    mut receiver: mpsc::Receiver<Job>,
) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while let Ok(job) = receiver.try_recv() {
            jobs.push(job);
        }
        for (settings, group) in group_by_settings(jobs) {
            run_group(&backend, batch_size, settings, group).await;
        }
    }
    tracing::debug!("generation worker stopped: no more requests can arrive");
}

/// Groups jobs by settings, keeping arrival order within and across groups.
fn group_by_settings(jobs: Vec<Job>) -> Vec<(GenerateSettings, Vec<Job>)> {
    let mut groups: Vec<(GenerateSettings, Vec<Job>)> = Vec::new();
    for job in jobs {
        match groups
            .iter_mut()
            .find(|(settings, _)| *settings == job.settings)
        {
            Some((_, group)) => group.push(job),
            None => groups.push((job.settings.clone(), vec![job])),
        }
    }
    groups
}

async fn run_group(
    backend: &Arc<dyn ChatBackend>,
    batch_size: usize,
    settings: GenerateSettings,
    group: Vec<Job>,
) {
    // A client that hung up while queued needs no generation.
    let group: Vec<Job> = group
        .into_iter()
        .filter(|job| !job.reply.is_closed())
        .collect();
    if group.is_empty() {
        return;
    }
    let prompts: Vec<String> = group.iter().map(|job| job.prompt.clone()).collect();
    let config = GenerateConfig {
        max_new_tokens: settings.max_new_tokens,
        stop: settings.stop,
        batch_size,
    };
    tracing::debug!(
        prompts = prompts.len(),
        max_new_tokens = config.max_new_tokens,
        "generating a batch"
    );

    let worker_backend = Arc::clone(backend);
    let outcome =
        tokio::task::spawn_blocking(move || worker_backend.generate(&prompts, &config)).await;
    let generations = match outcome {
        Ok(Ok(generations)) if generations.len() == group.len() => generations,
        Ok(Ok(generations)) => {
            let message = format!(
                "the model returned {} generations for {} prompts",
                generations.len(),
                group.len()
            );
            return fail_all(group, &message);
        }
        Ok(Err(err)) => return fail_all(group, &format!("{err:#}")),
        Err(join_error) => {
            return fail_all(
                group,
                &format!("the generation task panicked: {join_error}"),
            );
        }
    };
    for (job, generation) in group.into_iter().zip(generations) {
        // The client may have hung up meanwhile; its result is dropped.
        let _ = job.reply.send(Ok(generation));
    }
}

fn fail_all(group: Vec<Job>, message: &str) {
    tracing::error!(requests = group.len(), error = message, "generation failed");
    for job in group {
        let _ = job
            .reply
            .send(Err(BatchError::Generate(message.to_string())));
    }
}
