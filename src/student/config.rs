//! The LLaMA model configuration read from a checkpoint's `config.json`.
//!
//! Hugging Face writes this file in two layouts: transformers 5 nests
//! `rope_theta` under `rope_parameters`, writes `head_dim` and says `dtype`,
//! while LLaMA-2 checkpoints as published keep `rope_theta` at the top level
//! (or leave it out, meaning 10000), have no `head_dim` (it is
//! `hidden_size / num_attention_heads`) and say `torch_dtype`. Both are read
//! here. Settings the engine does not implement (RoPE scaling, biases,
//! activations other than SiLU) are rejected with an error naming the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Failure to read or accept a `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read model config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model config {path} is not valid JSON")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("model config {path}: field `{field}` is missing")]
    Missing { path: PathBuf, field: &'static str },
    #[error("model config {path}: field `{field}` is invalid: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("model config {path}: field `{field}` = {value} is not supported: {hint}")]
    Unsupported {
        path: PathBuf,
        field: String,
        value: String,
        hint: String,
    },
}

/// The architecture hyper-parameters of a LLaMA causal LM, in Hugging Face names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl LlamaConfig {
    /// Reads and validates `path` (a `config.json`).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&json, path)
    }

    /// Validates an already parsed `config.json`; `path` is only used in errors.
    pub fn from_json(json: &Value, path: &Path) -> Result<Self, ConfigError> {
        let reader = FieldReader { json, path };

        if let Some(model_type) = json.get("model_type").and_then(Value::as_str)
            && !matches!(model_type, "llama" | "mistral")
        {
            return Err(reader.unsupported(
                "model_type",
                json["model_type"].to_string(),
                "only LLaMA-architecture models (model_type \"llama\") can be loaded",
            ));
        }
        reader.reject_true("attention_bias", "q/k/v/o projections with a bias")?;
        reader.reject_true("mlp_bias", "MLP projections with a bias")?;
        if let Some(act) = json.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            return Err(reader.unsupported(
                "hidden_act",
                format!("\"{act}\""),
                "the MLP implements SiLU (SwiGLU) only",
            ));
        }
        if let Some(tp) = json.get("pretraining_tp").and_then(Value::as_u64)
            && tp != 1
        {
            return Err(reader.unsupported(
                "pretraining_tp",
                tp.to_string(),
                "only pretraining_tp = 1 is implemented",
            ));
        }

        let hidden_size = reader.usize("hidden_size")?;
        let num_attention_heads = reader.usize("num_attention_heads")?;
        let num_key_value_heads = reader
            .optional_usize("num_key_value_heads")?
            .unwrap_or(num_attention_heads);
        let head_dim = match reader.optional_usize("head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(reader.invalid(
                        "num_attention_heads",
                        format!(
                            "hidden_size {hidden_size} is not divisible by {num_attention_heads} heads and there is no head_dim"
                        ),
                    ));
                }
                hidden_size / num_attention_heads
            }
        };
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(reader.invalid(
                "num_key_value_heads",
                format!(
                    "{num_attention_heads} attention heads are not a multiple of {num_key_value_heads} key/value heads"
                ),
            ));
        }
        if head_dim % 2 != 0 {
            return Err(reader.invalid(
                "head_dim",
                format!("{head_dim} is odd; RoPE needs an even head dimension"),
            ));
        }

        let rope_theta = reader.rope_theta()?;

        Ok(Self {
            vocab_size: reader.usize("vocab_size")?,
            hidden_size,
            intermediate_size: reader.usize("intermediate_size")?,
            num_hidden_layers: reader.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: reader.optional_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings: reader
                .optional_usize("max_position_embeddings")?
                .unwrap_or(4096),
            tie_word_embeddings: match json.get("tie_word_embeddings") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(
                        reader.invalid("tie_word_embeddings", format!("{other} is not a boolean"))
                    );
                }
            },
            bos_token_id: reader.token_id("bos_token_id")?,
            eos_token_id: reader.token_id("eos_token_id")?,
        })
    }
}

/// Typed access to the fields of one `config.json`, with errors naming the file.
struct FieldReader<'a> {
    json: &'a Value,
    path: &'a Path,
}

impl FieldReader<'_> {
    fn invalid(&self, field: &str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            field: field.to_owned(),
            reason,
        }
    }

    fn unsupported(&self, field: &str, value: String, hint: &str) -> ConfigError {
        ConfigError::Unsupported {
            path: self.path.to_owned(),
            field: field.to_owned(),
            value,
            hint: hint.to_owned(),
        }
    }

    fn usize(&self, field: &'static str) -> Result<usize, ConfigError> {
        self.optional_usize(field)?.ok_or(ConfigError::Missing {
            path: self.path.to_owned(),
            field,
        })
    }

    fn optional_usize(&self, field: &str) -> Result<Option<usize>, ConfigError> {
        match self.json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n as usize)),
                _ => Err(self.invalid(field, format!("{v} is not a positive integer"))),
            },
        }
    }

    fn optional_f64(&self, field: &str) -> Result<Option<f64>, ConfigError> {
        Self::f64_in(self.json, field).map_err(|reason| self.invalid(field, reason))
    }

    fn f64_in(json: &Value, field: &str) -> Result<Option<f64>, String> {
        match json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
                _ => Err(format!("{v} is not a positive number")),
            },
        }
    }

    /// Reads a token id; a list (several eos ids) keeps its first entry.
    fn token_id(&self, field: &str) -> Result<Option<u32>, ConfigError> {
        let value = match self.json.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => match items.first() {
                Some(first) => first,
                None => return Ok(None),
            },
            Some(v) => v,
        };
        match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(id) => Ok(Some(id)),
            None => Err(self.invalid(field, format!("{value} is not a token id"))),
        }
    }

    fn reject_true(&self, field: &str, what: &str) -> Result<(), ConfigError> {
        if self.json.get(field).and_then(Value::as_bool) == Some(true) {
            return Err(self.unsupported(
                field,
                "true".into(),
                &format!("{what} is not implemented"),
            ));
        }
        Ok(())
    }

    /// Reads the RoPE base from either layout and rejects any RoPE scaling.
    fn rope_theta(&self) -> Result<f64, ConfigError> {
        let mut theta = self.optional_f64("rope_theta")?;
        if let Some(params) = self.json.get("rope_parameters").filter(|v| !v.is_null()) {
            if let Some(kind) = params.get("rope_type").and_then(Value::as_str)
                && kind != "default"
            {
                return Err(self.unsupported(
                    "rope_parameters.rope_type",
                    format!("\"{kind}\""),
                    "only unscaled RoPE (rope_type \"default\") is implemented",
                ));
            }
            if let Some(nested) = Self::f64_in(params, "rope_theta")
                .map_err(|reason| self.invalid("rope_parameters.rope_theta", reason))?
            {
                theta = Some(nested);
            }
        }
        if let Some(scaling) = self.json.get("rope_scaling").filter(|v| !v.is_null()) {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            if kind != "default" {
                return Err(self.unsupported(
                    "rope_scaling",
                    format!("type \"{kind}\""),
                    "RoPE scaling is not implemented; use a checkpoint without rope_scaling",
                ));
            }
        }
        Ok(theta.unwrap_or(10_000.0))
    }
}
