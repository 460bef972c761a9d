//! Supervised fine-tuning of the LoRA factors.
//!
//! Each example is `<s> prompt` followed by `completion </s>`; the loss is the
//! mean next-token cross-entropy over the completion tokens (eos included),
//! with prompt tokens masked out, as Hugging Face trainers compute it. An
//! optimizer step averages over every supervised token of its micro-batches,
//! so gradient accumulation gives the same update as one large batch.
//! AdamW follows PyTorch's `torch.optim.AdamW` (decoupled weight decay, bias
//! correction); the learning rate warms up linearly from 0, then decays on a
//! cosine to 0, as transformers' `get_cosine_schedule_with_warmup` does.

use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::loss::cross_entropy_rows;
use super::model::{Llama, Pass, attention_mask};
use super::{StepMetrics, TrainConfig};

/// One tokenized training sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    /// Tokens before this index are prompt and excluded from the loss.
    pub prompt_len: usize,
}

impl Sequence {
    /// Number of tokens that are targets of the loss.
    pub fn target_count(&self) -> usize {
        let first_target = self.prompt_len.max(1);
        self.ids.len().saturating_sub(first_target)
    }
}

/// Sum of the target tokens' cross-entropy over `sequences` (right-padded
/// into one batch), as a scalar float32 tensor, and the number of targets.
///
/// `pass` decides whether gradients flow and whether dropout applies.
pub fn loss_sum(
    model: &Llama,
    sequences: &[Sequence],
    pass: Pass<'_>,
) -> candle_core::Result<(Tensor, usize)> {
    let device = model.device();
    let batch = sequences.len();
    let seq_len = sequences.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    if batch == 0 || seq_len == 0 {
        candle_core::bail!("cannot compute a loss over an empty batch");
    }

    let mut ids = Vec::with_capacity(batch * seq_len);
    let mut valid = Vec::with_capacity(batch);
    // Rows of the flattened (batch * seq_len) hidden states that predict a
    // target, and the target each predicts.
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (b, s) in sequences.iter().enumerate() {
        let len = s.ids.len();
        ids.extend(
            s.ids
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0, seq_len - len)),
        );
        valid.push((0..seq_len).map(|t| t < len).collect::<Vec<_>>());
        for t in s.prompt_len.max(1)..len {
            rows.push((b * seq_len + t - 1) as u32);
            targets.push(s.ids[t]);
        }
    }
    let count = targets.len();
    if count == 0 {
        candle_core::bail!(
            "the batch has no target tokens (every completion is empty or truncated)"
        );
    }

    let input = Tensor::from_vec(ids, (batch, seq_len), device)?;
    let positions = Tensor::arange(0u32, seq_len as u32, device)?
        .unsqueeze(0)?
        .repeat((batch, 1))?;
    let mask = attention_mask(&valid, 0, device)?;
    let hidden = model.forward_hidden(&input, &positions, &mask, None, pass)?;
    let hidden_size = model.config.hidden_size;

    // The LM head runs only on rows that predict a target: prompt rows and
    // padding cost nothing.
    let rows = Tensor::from_vec(rows, count, device)?;
    let selected = hidden
        .reshape((batch * seq_len, hidden_size))?
        .index_select(&rows, 0)?;
    let logits = model.lm_head(&selected)?;
    let losses = cross_entropy_rows(&logits, &targets)?;
    Ok((losses.sum_all()?, count))
}

/// Mean cross-entropy of the targets of `sequences`, without gradients or dropout.
pub fn mean_loss(model: &Llama, sequences: &[Sequence]) -> candle_core::Result<f64> {
    let (sum, count) = loss_sum(model, sequences, Pass::Inference)?;
    Ok(sum.to_scalar::<f32>()? as f64 / count as f64)
}

/// PyTorch's AdamW over a fixed list of variables.
pub struct AdamW {
    vars: Vec<Var>,
    first_moment: Vec<Tensor>,
    second_moment: Vec<Tensor>,
    step: i32,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, weight_decay: f64) -> candle_core::Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Self {
            first_moment: vars.iter().map(zeros).collect::<Result<_, _>>()?,
            second_moment: vars.iter().map(zeros).collect::<Result<_, _>>()?,
            vars,
            step: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Applies one update with learning rate `lr`; `grads[i]` belongs to `vars[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> candle_core::Result<()> {
        self.step += 1;
        let bias1 = 1.0 - self.beta1.powi(self.step);
        let bias2 = 1.0 - self.beta2.powi(self.step);
        for (i, var) in self.vars.iter().enumerate() {
            let g = &grads[i];
            let m = ((&self.first_moment[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            let v = ((&self.second_moment[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&m / bias1)?;
            let v_hat = (&v / bias2)?;
            let decayed = (var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.first_moment[i] = m;
            self.second_moment[i] = v;
        }
        Ok(())
    }
}

/// Gradients of `loss` for `vars`, zero where a variable got none.
pub fn gradients(loss: &Tensor, vars: &[Var]) -> candle_core::Result<Vec<Tensor>> {
    let grads = loss.backward()?;
    vars.iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => v.as_tensor().zeros_like(),
        })
        .collect()
}

/// Global L2 norm of `grads`.
pub fn global_norm(grads: &[Tensor]) -> candle_core::Result<f64> {
    let mut total = 0.0f64;
    for g in grads {
        total += g
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    Ok(total.sqrt())
}

/// Learning rate at optimizer step `step` (0-based) of `total`.
pub fn scheduled_lr(base: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Example indices of every epoch, shuffled by a generator seeded with `seed`.
pub fn epoch_orders(examples: usize, epochs: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..epochs)
        .map(|_| {
            let mut order: Vec<usize> = (0..examples).collect();
            order.shuffle(&mut rng);
            order
        })
        .collect()
}

/// The accumulated gradient of one optimizer step, summed over micro-batches.
pub struct GradAccumulator {
    sums: Option<Vec<Tensor>>,
}

impl GradAccumulator {
    pub fn new() -> Self {
        Self { sums: None }
    }

    pub fn add(&mut self, grads: Vec<Tensor>) -> candle_core::Result<()> {
        self.sums = Some(match self.sums.take() {
            None => grads,
            Some(sums) => sums
                .iter()
                .zip(&grads)
                .map(|(a, b)| a + b)
                .collect::<Result<_, _>>()?,
        });
        Ok(())
    }

    pub fn take(&mut self) -> Option<Vec<Tensor>> {
        self.sums.take()
    }
}

impl Default for GradAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Scales `grads` so that their global norm is at most `max_norm` (0 disables).
pub fn clip(grads: Vec<Tensor>, norm: f64, max_norm: f64) -> candle_core::Result<Vec<Tensor>> {
    if max_norm <= 0.0 || norm <= max_norm {
        return Ok(grads);
    }
    // torch.nn.utils.clip_grad_norm_ adds 1e-6 to the norm.
    let factor = max_norm / (norm + 1e-6);
    grads.iter().map(|g| g * factor).collect()
}

/// Failure of a fine-tuning run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training config: {0}")]
    Config(String),
    #[error("no example has a completion token left after truncation to max_seq_len {max_seq_len}")]
    NoTargets { max_seq_len: usize },
    #[error("the model has no adapter to train; call init_adapter or load_adapter first")]
    NoAdapter,
    #[error("training step {step} failed")]
    Step {
        step: usize,
        #[source]
        source: candle_core::Error,
    },
    #[error("training diverged at step {step}: the loss is {loss}")]
    Diverged { step: usize, loss: f64 },
}

fn validate(config: &TrainConfig) -> Result<(), TrainError> {
    let problem = if config.epochs == 0 {
        "epochs must be at least 1"
    } else if config.micro_batch_size == 0 {
        "micro_batch_size must be at least 1"
    } else if config.gradient_accumulation == 0 {
        "gradient_accumulation must be at least 1"
    } else if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        "learning_rate must be a positive number"
    } else if !(0.0..=1.0).contains(&config.warmup_ratio) {
        "warmup_ratio must be in [0, 1]"
    } else if config.weight_decay < 0.0 || config.max_grad_norm < 0.0 {
        "weight_decay and max_grad_norm must not be negative"
    } else if config.max_seq_len < 2 {
        "max_seq_len must be at least 2"
    } else {
        return Ok(());
    };
    Err(TrainError::Config(problem.into()))
}

/// Fine-tunes the adapter of `model` on `sequences` (already tokenized and
/// truncated), calling `on_step` after each optimizer step.
pub fn fine_tune(
    model: &Llama,
    sequences: &[Sequence],
    config: &TrainConfig,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<Vec<StepMetrics>, TrainError> {
    validate(config)?;
    let usable: Vec<&Sequence> = sequences.iter().filter(|s| s.target_count() > 0).collect();
    if usable.is_empty() {
        return Err(TrainError::NoTargets {
            max_seq_len: config.max_seq_len,
        });
    }
    if usable.len() < sequences.len() {
        tracing::warn!(
            skipped = sequences.len() - usable.len(),
            "examples without completion tokens after truncation are skipped"
        );
    }
    let named_vars = super::adapter::trainable_vars(model);
    if named_vars.is_empty() {
        return Err(TrainError::NoAdapter);
    }
    let vars: Vec<Var> = named_vars.into_iter().map(|(_, v)| v).collect();

    let micro_per_epoch = usable.len().div_ceil(config.micro_batch_size);
    let steps_per_epoch = micro_per_epoch.div_ceil(config.gradient_accumulation);
    let total_steps = steps_per_epoch * config.epochs;
    let warmup = (config.warmup_ratio * total_steps as f64).ceil() as usize;
    let mut optimizer = AdamW::new(vars.clone(), config.weight_decay)
        .map_err(|source| TrainError::Step { step: 0, source })?;
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_d7c0);
    let orders = epoch_orders(usable.len(), config.epochs, config.seed);

    let progress = indicatif::ProgressBar::new(total_steps as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} fine-tuning [{bar:30}] step {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    tracing::info!(
        examples = usable.len(),
        epochs = config.epochs,
        steps = total_steps,
        warmup,
        "fine-tuning started"
    );

    let mut metrics = Vec::with_capacity(total_steps);
    let mut step = 0;
    for (epoch, order) in orders.iter().enumerate() {
        let micro_batches: Vec<Vec<Sequence>> = order
            .chunks(config.micro_batch_size)
            .map(|chunk| chunk.iter().map(|&i| usable[i].clone()).collect())
            .collect();
        let mut epoch_loss = 0.0;
        let mut epoch_steps = 0;
        for group in micro_batches.chunks(config.gradient_accumulation) {
            let step_error = |source| TrainError::Step { step, source };
            let tokens: usize = group
                .iter()
                .flat_map(|mb| mb.iter().map(Sequence::target_count))
                .sum();
            let mut accumulator = GradAccumulator::new();
            let mut loss_total = 0.0;
            for micro_batch in group {
                let (sum, _) = loss_sum(
                    model,
                    micro_batch,
                    Pass::Autograd {
                        dropout: Some(&mut dropout_rng),
                    },
                )
                .map_err(step_error)?;
                let loss = (sum / tokens as f64).map_err(step_error)?;
                loss_total += loss.to_scalar::<f32>().map_err(step_error)? as f64;
                accumulator
                    .add(gradients(&loss, &vars).map_err(step_error)?)
                    .map_err(step_error)?;
            }
            if !loss_total.is_finite() {
                return Err(TrainError::Diverged {
                    step,
                    loss: loss_total,
                });
            }
            let grads = accumulator.take().unwrap_or_default();
            let grad_norm = global_norm(&grads).map_err(step_error)?;
            let grads = clip(grads, grad_norm, config.max_grad_norm).map_err(step_error)?;
            let lr = scheduled_lr(config.learning_rate, step, total_steps, warmup);
            optimizer.step(&grads, lr).map_err(step_error)?;

            let m = StepMetrics {
                step,
                epoch,
                loss: loss_total,
                lr,
                grad_norm,
                tokens,
            };
            progress.set_message(format!("loss {loss_total:.4}"));
            progress.inc(1);
            tracing::debug!(
                step,
                loss = loss_total,
                lr,
                grad_norm,
                tokens,
                "optimizer step"
            );
            on_step(&m);
            metrics.push(m);
            epoch_loss += loss_total;
            epoch_steps += 1;
            step += 1;
        }
        tracing::info!(
            epoch,
            mean_loss = epoch_loss / epoch_steps.max(1) as f64,
            "epoch finished"
        );
    }
    progress.finish_and_clear();
    Ok(metrics)
}
