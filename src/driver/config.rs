//! The effective configuration of a run: built-in defaults, overridden by a
//! TOML file (`configs/gsm8k.toml` is the shipped one), overridden by
//! command-line flags, then validated into typed settings before any work
//! starts. The validated value is what `runs.config_json` stores, so a
//! resumed run uses exactly the settings it started with.
//!
//! Every section and field is optional in the file; unknown keys are errors,
//! so a misspelt setting cannot be silently ignored. Relative paths in a file
//! are resolved against the file's folder; relative built-in defaults and
//! command-line paths against the working directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::student::{DType, DeviceKind, GenerateConfig, LoadOptions, LoraConfig, TrainConfig};
use crate::teacher::TeacherConfig;

/// Projections LoRA can adapt, named as PEFT and Hugging Face name them.
pub const LORA_TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// Error of loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read the config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid setting `{field}` = {value}: {expected}")]
    Invalid {
        /// Dotted TOML key, e.g. `lora.r`.
        field: &'static str,
        value: String,
        expected: String,
    },
}

fn invalid(field: &'static str, value: impl std::fmt::Debug, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, value: format!("{value:?}"), expected: expected.into() }
}

/// Every setting of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelSettings,
    pub lora: LoraSettings,
    pub train: TrainSettings,
    pub generate: GenerateSettings,
    pub teacher: TeacherSettings,
    pub run: LoopSettings,
}

/// The student checkpoint and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// Hugging Face checkpoint directory (config.json, tokenizer.json, safetensors).
    pub dir: PathBuf,
    pub dtype: DType,
    pub device: DeviceKind,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self { dir: PathBuf::from("models/Llama-2-7b-hf"), dtype: DType::F32, device: DeviceKind::Cpu }
    }
}

/// LoRA adapter shape, with PEFT's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraSettings {
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            target_modules: LORA_TARGETS.iter().map(|name| name.to_string()).collect(),
        }
    }
}

/// Supervised fine-tuning settings of every iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub epochs: usize,
    pub micro_batch_size: usize,
    pub gradient_accumulation: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    /// Tokens; longer examples are truncated from the right.
    pub max_seq_len: usize,
    /// Seeds LoRA initialisation, dropout and shuffling.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            epochs: 3,
            micro_batch_size: 4,
            gradient_accumulation: 4,
            learning_rate: 2e-4,
            weight_decay: 0.0,
            warmup_ratio: 0.03,
            max_grad_norm: 1.0,
            max_seq_len: 512,
            seed: 42,
        }
    }
}

/// Greedy evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateSettings {
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
    /// Prompts decoded together.
    pub batch_size: usize,
}

impl Default for GenerateSettings {
    fn default() -> Self {
        Self { max_new_tokens: 256, stop: vec!["\nQuestion:".to_string()], batch_size: 16 }
    }
}

/// Teacher client settings; see [`TeacherConfig`] for each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherSettings {
    pub base_url: String,
    pub model: String,
    pub api_key_env: String,
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    pub seed: Option<i64>,
    pub timeout_secs: f64,
    pub max_attempts: u32,
    pub max_concurrent: usize,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u32,
    pub price_prompt_per_million: f64,
    pub price_completion_per_million: f64,
    pub examples_per_call: usize,
    pub show_student_answer: bool,
    pub system_prompt: PathBuf,
    pub user_prompt: PathBuf,
    pub rouge_threshold: f64,
}

impl Default for TeacherSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_string(),
            model: "gpt-4o-mini".to_string(),
            api_key_env: "OPENAI_API_KEY".to_string(),
            temperature: 0.7,
            top_p: 1.0,
            max_tokens: 1500,
            seed: Some(1),
            timeout_secs: 120.0,
            max_attempts: 5,
            max_concurrent: 8,
            requests_per_minute: 0,
            tokens_per_minute: 0,
            price_prompt_per_million: 0.0,
            price_completion_per_million: 0.0,
            examples_per_call: 3,
            show_student_answer: false,
            system_prompt: PathBuf::from("configs/prompts/llm2llm_system.md"),
            user_prompt: PathBuf::from("configs/prompts/llm2llm_user.md"),
            rouge_threshold: 0.95,
        }
    }
}

/// Settings of the loop itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopSettings {
    /// Iterations of train, evaluate, augment; the last one does not augment.
    pub iterations: usize,
    /// Start each iteration's training from the previous iteration's adapter
    /// instead of a fresh adapter on the base weights.
    pub continue_from_previous_adapter: bool,
}

impl Default for LoopSettings {
    fn default() -> Self {
        Self { iterations: 4, continue_from_previous_adapter: false }
    }
}

impl RunConfig {
    /// Reads a TOML config file over the built-in defaults and resolves its
    /// relative paths against the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config: RunConfig =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for relative in [&mut config.model.dir, &mut config.teacher.system_prompt, &mut config.teacher.user_prompt] {
            if relative.is_relative() {
                *relative = base.join(&*relative);
            }
        }
        Ok(config)
    }

    /// Checks every setting and the paths it names, so a bad value fails
    /// before a model is loaded or a request is sent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let model_config = self.model.dir.join("config.json");
        if !model_config.is_file() {
            return Err(invalid(
                "model.dir",
                &self.model.dir,
                format!("{} not found; point --model at a Hugging Face checkpoint folder", model_config.display()),
            ));
        }

        let lora = &self.lora;
        if lora.r == 0 {
            return Err(invalid("lora.r", lora.r, "expected a rank of at least 1"));
        }
        if !(lora.lora_alpha.is_finite() && lora.lora_alpha > 0.0) {
            return Err(invalid("lora.lora_alpha", lora.lora_alpha, "expected a positive number"));
        }
        if !(0.0..1.0).contains(&lora.lora_dropout) {
            return Err(invalid("lora.lora_dropout", lora.lora_dropout, "expected a probability in [0, 1)"));
        }
        if lora.target_modules.is_empty() {
            return Err(invalid("lora.target_modules", &lora.target_modules, "expected at least one module"));
        }
        if let Some(unknown) = lora.target_modules.iter().find(|name| !LORA_TARGETS.contains(&name.as_str())) {
            return Err(invalid("lora.target_modules", unknown, format!("expected some of {}", LORA_TARGETS.join(", "))));
        }

        let train = &self.train;
        for (field, value) in [
            ("train.epochs", train.epochs),
            ("train.micro_batch_size", train.micro_batch_size),
            ("train.gradient_accumulation", train.gradient_accumulation),
            ("train.max_seq_len", train.max_seq_len),
        ] {
            if value == 0 {
                return Err(invalid(field, value, "expected at least 1"));
            }
        }
        if !(train.learning_rate.is_finite() && train.learning_rate > 0.0) {
            return Err(invalid("train.learning_rate", train.learning_rate, "expected a positive number"));
        }
        if !(train.weight_decay.is_finite() && train.weight_decay >= 0.0) {
            return Err(invalid("train.weight_decay", train.weight_decay, "expected zero or more"));
        }
        if !(0.0..1.0).contains(&train.warmup_ratio) {
            return Err(invalid("train.warmup_ratio", train.warmup_ratio, "expected a fraction in [0, 1)"));
        }
        if !(train.max_grad_norm.is_finite() && train.max_grad_norm >= 0.0) {
            return Err(invalid("train.max_grad_norm", train.max_grad_norm, "expected zero (no clipping) or more"));
        }

        let generate = &self.generate;
        if generate.max_new_tokens == 0 {
            return Err(invalid("generate.max_new_tokens", generate.max_new_tokens, "expected at least 1"));
        }
        if generate.batch_size == 0 {
            return Err(invalid("generate.batch_size", generate.batch_size, "expected at least 1"));
        }
        if generate.stop.iter().any(String::is_empty) {
            return Err(invalid("generate.stop", &generate.stop, "expected non-empty stop strings"));
        }

        self.validate_teacher()?;

        if self.run.iterations == 0 {
            return Err(invalid("run.iterations", self.run.iterations, "expected at least 1"));
        }
        Ok(())
    }

    fn validate_teacher(&self) -> Result<(), ConfigError> {
        let teacher = &self.teacher;
        match reqwest::Url::parse(&teacher.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(invalid(
                    "teacher.base_url",
                    &teacher.base_url,
                    "expected an http(s) URL such as https://api.openai.com/v1",
                ));
            }
        }
        if teacher.model.trim().is_empty() {
            return Err(invalid("teacher.model", &teacher.model, "expected a model name"));
        }
        if teacher.api_key_env.trim().is_empty() {
            return Err(invalid("teacher.api_key_env", &teacher.api_key_env, "expected an environment variable name"));
        }
        if !(0.0..=2.0).contains(&teacher.temperature) {
            return Err(invalid("teacher.temperature", teacher.temperature, "expected a value in [0, 2]"));
        }
        if !(teacher.top_p > 0.0 && teacher.top_p <= 1.0) {
            return Err(invalid("teacher.top_p", teacher.top_p, "expected a value in (0, 1]"));
        }
        if teacher.max_tokens == 0 {
            return Err(invalid("teacher.max_tokens", teacher.max_tokens, "expected at least 1"));
        }
        if !(teacher.timeout_secs.is_finite() && teacher.timeout_secs > 0.0) {
            return Err(invalid("teacher.timeout_secs", teacher.timeout_secs, "expected a positive number of seconds"));
        }
        if teacher.max_attempts == 0 {
            return Err(invalid("teacher.max_attempts", teacher.max_attempts, "expected at least 1"));
        }
        if teacher.max_concurrent == 0 {
            return Err(invalid("teacher.max_concurrent", teacher.max_concurrent, "expected at least 1"));
        }
        for (field, price) in [
            ("teacher.price_prompt_per_million", teacher.price_prompt_per_million),
            ("teacher.price_completion_per_million", teacher.price_completion_per_million),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                return Err(invalid(field, price, "expected zero or more (USD)"));
            }
        }
        if teacher.examples_per_call == 0 {
            return Err(invalid("teacher.examples_per_call", teacher.examples_per_call, "expected at least 1"));
        }
        if !(teacher.rouge_threshold > 0.0 && teacher.rouge_threshold <= 1.0) {
            return Err(invalid("teacher.rouge_threshold", teacher.rouge_threshold, "expected a ROUGE-L F1 in (0, 1]"));
        }
        for (field, path) in [("teacher.system_prompt", &teacher.system_prompt), ("teacher.user_prompt", &teacher.user_prompt)] {
            if !path.is_file() {
                return Err(invalid(field, path, "prompt file not found; the shipped prompts are in configs/prompts/"));
            }
        }
        Ok(())
    }

    /// Makes every path absolute, so a run resumed from another working
    /// directory finds the same files.
    pub fn absolutize_paths(&mut self) -> std::io::Result<()> {
        for path in [&mut self.model.dir, &mut self.teacher.system_prompt, &mut self.teacher.user_prompt] {
            *path = std::path::absolute(&*path)?;
        }
        Ok(())
    }

    /// Builds the student's loading options.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { dtype: self.model.dtype, device: self.model.device }
    }

    /// Builds the student's LoRA settings.
    pub fn lora_config(&self) -> LoraConfig {
        LoraConfig {
            r: self.lora.r,
            lora_alpha: self.lora.lora_alpha,
            lora_dropout: self.lora.lora_dropout,
            target_modules: self.lora.target_modules.clone(),
        }
    }

    /// Builds the student's fine-tuning settings.
    pub fn train_config(&self) -> TrainConfig {
        let train = &self.train;
        TrainConfig {
            epochs: train.epochs,
            micro_batch_size: train.micro_batch_size,
            gradient_accumulation: train.gradient_accumulation,
            learning_rate: train.learning_rate,
            weight_decay: train.weight_decay,
            warmup_ratio: train.warmup_ratio,
            max_grad_norm: train.max_grad_norm,
            max_seq_len: train.max_seq_len,
            seed: train.seed,
        }
    }

    /// Builds the student's generation settings.
    pub fn generate_config(&self) -> GenerateConfig {
        GenerateConfig {
            max_new_tokens: self.generate.max_new_tokens,
            stop: self.generate.stop.clone(),
            batch_size: self.generate.batch_size,
        }
    }

    /// Builds the teacher client's settings.
    pub fn teacher_config(&self) -> TeacherConfig {
        let teacher = self.teacher.clone();
        TeacherConfig {
            base_url: teacher.base_url,
            model: teacher.model,
            api_key_env: teacher.api_key_env,
            temperature: teacher.temperature,
            top_p: teacher.top_p,
            max_tokens: teacher.max_tokens,
            seed: teacher.seed,
            timeout_secs: teacher.timeout_secs,
            max_attempts: teacher.max_attempts,
            max_concurrent: teacher.max_concurrent,
            requests_per_minute: teacher.requests_per_minute,
            tokens_per_minute: teacher.tokens_per_minute,
            price_prompt_per_million: teacher.price_prompt_per_million,
            price_completion_per_million: teacher.price_completion_per_million,
            examples_per_call: teacher.examples_per_call,
            show_student_answer: teacher.show_student_answer,
            system_prompt: teacher.system_prompt,
            user_prompt: teacher.user_prompt,
            rouge_threshold: teacher.rouge_threshold,
        }
    }
}
