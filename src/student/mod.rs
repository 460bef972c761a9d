//! The student engine: a LLaMA-architecture causal LM in candle with LoRA
//! adapters, supervised fine-tuning and greedy batched generation.
//!
//! This file is the facade the rest of llm2llm uses: its types and the
//! methods of [`Student`] are the contract with `driver`, `serve` and
//! `baseline`. The engine itself lives in the submodules: `config` and
//! `loader` read a checkpoint, `model` is the LLaMA network, `lora` and
//! `adapter` the LoRA layers and PEFT files, `train` the fine-tuning loop,
//! `generate` greedy decoding, and `bench` the throughput benchmark.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub mod adapter;
pub mod bench;
pub mod config;
pub mod generate;
pub mod loader;
pub mod lora;
pub mod loss;
pub mod matmul;
pub mod model;
pub mod tokenizer;
pub mod train;

pub use config::LlamaConfig;
pub use model::Llama;
pub use tokenizer::StudentTokenizer;

use loader::Weights;

/// Floating-point type of the weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    #[default]
    F32,
    Bf16,
    F16,
}

/// Where tensors live. CUDA and Metal need the matching cargo feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
    Metal,
}

/// How to load a Hugging Face checkpoint directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: DeviceKind,
}

/// LoRA settings, named as PEFT names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    /// Any subset of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    pub target_modules: Vec<String>,
}

/// Supervised fine-tuning settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Sequences per micro-batch.
    pub micro_batch_size: usize,
    /// Micro-batches per optimizer step.
    pub gradient_accumulation: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Fraction of optimizer steps spent in linear warmup.
    pub warmup_ratio: f64,
    /// Global gradient-norm clip; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Sequences longer than this many tokens are truncated from the right.
    pub max_seq_len: usize,
    /// Seeds LoRA initialisation, dropout and the shuffling of examples.
    pub seed: u64,
}

/// One supervised example: the loss covers `completion` (plus eos) only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SftExample {
    pub prompt: String,
    pub completion: String,
}

/// Metrics of one optimizer step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepMetrics {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Supervised target tokens in the step.
    pub tokens: usize,
}

/// Greedy generation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    /// Generation of a sequence stops when its decoded text contains one of these.
    pub stop: Vec<String>,
    /// Prompts decoded together.
    pub batch_size: usize,
}

/// One generated continuation (the prompt excluded; stop string removed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generation {
    pub text: String,
    pub token_ids: Vec<u32>,
    /// "eos", "stop" or "length".
    pub finish_reason: String,
}

/// A loaded base model, its tokenizer and at most one LoRA adapter.
///
/// `Student` is `Send`, so callers may move it into
/// `tokio::task::spawn_blocking` for training and generation.
pub struct Student {
    model_dir: PathBuf,
    model: Llama,
    tokenizer: StudentTokenizer,
    /// The config of the current adapter; `None` when there is none.
    adapter: Option<LoraConfig>,
}

impl Student {
    /// Loads `config.json`, `tokenizer.json` and the safetensors weights
    /// (single file or sharded) from `model_dir`.
    pub fn load(model_dir: &Path, options: &LoadOptions) -> anyhow::Result<Self> {
        let device = options.device.open()?;
        let dtype = options.dtype.to_candle();
        let config = LlamaConfig::from_file(&model_dir.join("config.json"))?;
        let tokenizer = StudentTokenizer::from_file(
            &model_dir.join("tokenizer.json"),
            config.bos_token_id,
            config.eos_token_id,
        )?;
        let weights = Weights::open(model_dir, dtype, &device)?;
        let model = Llama::load(&config, &weights)?;
        tracing::debug!(
            model_dir = %model_dir.display(),
            ?dtype,
            device = ?options.device,
            layers = config.num_hidden_layers,
            hidden = config.hidden_size,
            "student model loaded"
        );
        Ok(Self {
            model_dir: model_dir.to_owned(),
            model,
            tokenizer,
            adapter: None,
        })
    }

    /// Replaces any adapter with a freshly initialised one (A random from
    /// `seed`, B zero), so training starts again from the base weights.
    pub fn init_adapter(&mut self, lora: &LoraConfig, seed: u64) -> anyhow::Result<()> {
        adapter::init(&mut self.model, lora, seed)?;
        self.adapter = Some(adapter::canonical(lora)?);
        Ok(())
    }

    /// Loads a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
    pub fn load_adapter(&mut self, adapter_dir: &Path) -> anyhow::Result<()> {
        let config = adapter::load(&mut self.model, adapter_dir)
            .with_context(|| format!("cannot load adapter {}", adapter_dir.display()))?;
        self.adapter = Some(config);
        Ok(())
    }

    /// Writes the current adapter in PEFT format.
    pub fn save_adapter(&self, adapter_dir: &Path) -> anyhow::Result<()> {
        let config = self
            .adapter
            .as_ref()
            .context("there is no adapter to save; call init_adapter or load_adapter first")?;
        adapter::save(&self.model, config, &self.model_dir, adapter_dir)
            .with_context(|| format!("cannot save adapter to {}", adapter_dir.display()))
    }

    /// Fine-tunes the current adapter on `examples`, calling `on_step` after
    /// each optimizer step.
    pub fn train(
        &mut self,
        examples: &[SftExample],
        config: &TrainConfig,
        on_step: &mut dyn FnMut(&StepMetrics),
    ) -> anyhow::Result<Vec<StepMetrics>> {
        let mut sequences = Vec::with_capacity(examples.len());
        for (i, example) in examples.iter().enumerate() {
            let sequence = self
                .sft_sequence(example, config.max_seq_len)
                .with_context(|| format!("cannot tokenize training example {i}"))?;
            sequences.push(sequence);
        }
        Ok(train::fine_tune(&self.model, &sequences, config, on_step)?)
    }

    /// Greedy, deterministic, batched generation; one result per prompt, in order.
    pub fn generate(
        &self,
        prompts: &[String],
        config: &GenerateConfig,
    ) -> anyhow::Result<Vec<Generation>> {
        let batch_size = config.batch_size.max(1);
        let mut encoded = Vec::with_capacity(prompts.len());
        for (i, prompt) in prompts.iter().enumerate() {
            let ids = self
                .tokenizer
                .encode(prompt, true)
                .with_context(|| format!("cannot tokenize prompt {i}"))?;
            encoded.push(ids);
        }
        // Batches of similar length waste less work on padding; results are
        // put back in prompt order.
        let mut order: Vec<usize> = (0..prompts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));

        let mut results: Vec<Option<Generation>> = vec![None; prompts.len()];
        for chunk in order.chunks(batch_size) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
            let mut should_stop = |_: usize, ids: &[u32]| -> bool {
                if config.stop.is_empty() {
                    return false;
                }
                match self.tokenizer.decode(ids) {
                    Ok(text) => config.stop.iter().any(|s| text.contains(s.as_str())),
                    Err(_) => false,
                }
            };
            let outputs = generate::greedy_batch(
                &self.model,
                &batch,
                config.max_new_tokens,
                Some(self.tokenizer.eos_id),
                &mut should_stop,
            )
            .context("generation failed")?;
            for (&i, (token_ids, finish)) in chunk.iter().zip(outputs) {
                let mut text = self
                    .tokenizer
                    .decode(&token_ids)
                    .with_context(|| format!("cannot decode the output of prompt {i}"))?;
                if finish == generate::Finish::Stop {
                    let cut = config
                        .stop
                        .iter()
                        .filter_map(|s| text.find(s.as_str()))
                        .min()
                        .unwrap_or(text.len());
                    text.truncate(cut);
                }
                results[i] = Some(Generation {
                    text,
                    token_ids,
                    finish_reason: finish.as_str().to_string(),
                });
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// The checkpoint directory this student was loaded from.
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir.clone()
    }

    /// The model, for lower-level use (logits, losses, benchmarks).
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The tokenizer of the checkpoint.
    pub fn tokenizer(&self) -> &StudentTokenizer {
        &self.tokenizer
    }

    /// The current adapter's config, if there is an adapter.
    pub fn adapter_config(&self) -> Option<&LoraConfig> {
        self.adapter.as_ref()
    }

    /// Folds the current adapter into the base weights; afterwards the
    /// student has no adapter and computes the same logits.
    pub fn merge_adapter(&mut self) -> anyhow::Result<()> {
        adapter::merge(&mut self.model)?;
        self.adapter = None;
        Ok(())
    }

    /// Writes the base model with the current adapter folded in as a
    /// Hugging Face checkpoint: `model.safetensors` in the loaded dtype,
    /// plus `config.json` and the tokenizer files copied from the model
    /// directory. The student itself keeps its unmerged adapter.
    pub fn export_merged(&self, out_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("cannot create {}", out_dir.display()))?;
        let merged = self.model.merged().context("cannot merge the adapter")?;
        let weights: std::collections::BTreeMap<String, candle_core::Tensor> =
            merged.named_weights().into_iter().collect();
        let weights_path = out_dir.join("model.safetensors");
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize_to_file(&weights, Some(metadata), &weights_path)
            .with_context(|| format!("cannot write {}", weights_path.display()))?;
        let files = [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
            "special_tokens_map.json",
        ];
        for name in files {
            let from = self.model_dir.join(name);
            if !from.is_file() {
                continue;
            }
            let to = out_dir.join(name);
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        tracing::info!(out_dir = %out_dir.display(), "merged checkpoint written");
        Ok(())
    }

    /// Tokenizes one example as training sees it: `<s> prompt`, then the
    /// completion without special tokens and eos, truncated to `max_seq_len`.
    pub fn sft_sequence(
        &self,
        example: &SftExample,
        max_seq_len: usize,
    ) -> anyhow::Result<train::Sequence> {
        let mut ids = self.tokenizer.encode(&example.prompt, true)?;
        let prompt_len = ids.len();
        ids.extend(self.tokenizer.encode(&example.completion, false)?);
        ids.push(self.tokenizer.eos_id);
        ids.truncate(max_seq_len);
        Ok(train::Sequence { ids, prompt_len })
    }
}

impl DType {
    /// The candle dtype of this choice.
    pub fn to_candle(self) -> candle_core::DType {
        match self {
            DType::F32 => candle_core::DType::F32,
            DType::Bf16 => candle_core::DType::BF16,
            DType::F16 => candle_core::DType::F16,
        }
    }
}

impl DeviceKind {
    /// Opens device 0 of this kind; CUDA and Metal need their cargo feature.
    pub fn open(self) -> anyhow::Result<candle_core::Device> {
        match self {
            DeviceKind::Cpu => Ok(candle_core::Device::Cpu),
            DeviceKind::Cuda => candle_core::Device::new_cuda(0)
                .context("cannot open CUDA device 0 (build with `--features cuda`)"),
            DeviceKind::Metal => candle_core::Device::new_metal(0)
                .context("cannot open Metal device 0 (build with `--features metal`)"),
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: DeviceKind::Cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn student_is_send() {
        assert_send::<Student>();
    }
}
