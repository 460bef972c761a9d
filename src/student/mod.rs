//! The student engine: a LLaMA-architecture causal LM in candle with LoRA
//! adapters, supervised fine-tuning and greedy batched generation.
//!
//! This file is the facade the rest of llm2llm uses. The signatures below are
//! the contract between the engine and its callers (`driver`, `serve`,
//! `baseline`); the bodies are filled in by the engine work.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod bench;

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
pub struct Student {
    _private: (),
}

impl Student {
    /// Loads `config.json`, `tokenizer.json` and the safetensors weights
    /// (single file or sharded) from `model_dir`.
    pub fn load(_model_dir: &Path, _options: &LoadOptions) -> anyhow::Result<Self> {
        todo!("student engine")
    }

    /// Replaces any adapter with a freshly initialised one (A random from
    /// `seed`, B zero), so training starts again from the base weights.
    pub fn init_adapter(&mut self, _lora: &LoraConfig, _seed: u64) -> anyhow::Result<()> {
        todo!("student engine")
    }

    /// Loads a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
    pub fn load_adapter(&mut self, _adapter_dir: &Path) -> anyhow::Result<()> {
        todo!("student engine")
    }

    /// Writes the current adapter in PEFT format.
    pub fn save_adapter(&self, _adapter_dir: &Path) -> anyhow::Result<()> {
        todo!("student engine")
    }

    /// Fine-tunes the current adapter on `examples`, calling `on_step` after
    /// each optimizer step.
    pub fn train(
        &mut self,
        _examples: &[SftExample],
        _config: &TrainConfig,
        _on_step: &mut dyn FnMut(&StepMetrics),
    ) -> anyhow::Result<Vec<StepMetrics>> {
        todo!("student engine")
    }

    /// Greedy, deterministic, batched generation; one result per prompt, in order.
    pub fn generate(
        &self,
        _prompts: &[String],
        _config: &GenerateConfig,
    ) -> anyhow::Result<Vec<Generation>> {
        todo!("student engine")
    }

    /// The checkpoint directory this student was loaded from.
    pub fn model_dir(&self) -> PathBuf {
        todo!("student engine")
    }
}
