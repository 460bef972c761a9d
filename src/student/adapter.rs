//! LoRA adapters on a [`Llama`]: fresh initialisation, and reading and
//! writing Hugging Face PEFT's adapter directory.
//!
//! The directory holds `adapter_config.json` and `adapter_model.safetensors`.
//! Tensor names are the module path with PEFT's wrapper prefix and without
//! the adapter name, e.g.
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (r, in)
//! and `...q_proj.lora_B.weight` (out, r). Options PEFT has that change the
//! arithmetic (rsLoRA, DoRA, per-module ranks, biases, extra trained modules)
//! are rejected with an error naming the field, rather than silently ignored.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::LoraConfig;
use super::lora::{Lora, Proj};
use super::model::Llama;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Failure to create, read or write an adapter.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("LoRA config: {0}")]
    InvalidConfig(String),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: field `{field}` {problem}")]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{path}: tensor `{name}` {problem}")]
    Tensor {
        path: PathBuf,
        name: String,
        problem: String,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("tensor operation on the adapter failed")]
    Candle(#[from] candle_core::Error),
}

/// Checks `config` and returns its target projections in a fixed order.
pub fn parse_targets(config: &LoraConfig) -> Result<Vec<Proj>, AdapterError> {
    if config.r == 0 {
        return Err(AdapterError::InvalidConfig("r must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&config.lora_dropout) {
        return Err(AdapterError::InvalidConfig(format!(
            "lora_dropout {} must be in [0, 1)",
            config.lora_dropout
        )));
    }
    if config.target_modules.is_empty() {
        return Err(AdapterError::InvalidConfig(
            "target_modules is empty; name some of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj".into(),
        ));
    }
    let mut targets = Vec::new();
    for name in &config.target_modules {
        let proj = Proj::from_peft_name(name).ok_or_else(|| {
            AdapterError::InvalidConfig(format!(
                "target module `{name}` is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
            ))
        })?;
        targets.push(proj);
    }
    targets.sort_unstable();
    targets.dedup();
    Ok(targets)
}

/// `config` with its target modules deduplicated and in block order
/// (q, k, v, o, gate, up, down), so equal adapters compare equal.
pub fn canonical(config: &LoraConfig) -> Result<LoraConfig, AdapterError> {
    let targets = parse_targets(config)?;
    Ok(LoraConfig {
        target_modules: targets.iter().map(|p| p.peft_name().to_string()).collect(),
        ..config.clone()
    })
}

/// Replaces every adapter of `model` with a fresh one on `config`'s targets.
pub fn init(model: &mut Llama, config: &LoraConfig, seed: u64) -> Result<(), AdapterError> {
    let targets = parse_targets(config)?;
    let scaling = config.lora_alpha / config.r as f64;
    let device = model.device().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    remove(model);
    for block in &mut model.layers {
        for &proj in &targets {
            let linear = block.linear_mut(proj);
            let (in_features, out_features) = (linear.in_features(), linear.out_features());
            linear.lora = Some(Lora::init(
                in_features,
                out_features,
                config.r,
                scaling,
                config.lora_dropout,
                &mut rng,
                &device,
            )?);
        }
    }
    Ok(())
}

/// Drops every adapter of `model`.
pub fn remove(model: &mut Llama) {
    for block in &mut model.layers {
        for proj in Proj::ALL {
            block.linear_mut(proj).lora = None;
        }
    }
}

/// The trainable `Var`s, in a fixed order (layer, then projection, A before B).
pub fn trainable_vars(model: &Llama) -> Vec<(String, Var)> {
    let mut vars = Vec::new();
    for (i, block) in model.layers.iter().enumerate() {
        for proj in Proj::ALL {
            if let Some(lora) = &block.linear(proj).lora {
                let path = proj.module_path(i);
                vars.push((format!("{path}.lora_A"), lora.a.clone()));
                vars.push((format!("{path}.lora_B"), lora.b.clone()));
            }
        }
    }
    vars
}

fn tensor_name(module_path: &str, factor: &str) -> String {
    format!("base_model.model.{module_path}.{factor}.weight")
}

/// Writes the adapter of `model` (configured by `config`) to `dir` in PEFT format.
pub fn save(
    model: &Llama,
    config: &LoraConfig,
    base_model: &Path,
    dir: &Path,
) -> Result<(), AdapterError> {
    let write_error =
        |path: &Path, source: Box<dyn std::error::Error + Send + Sync>| AdapterError::Write {
            path: path.to_owned(),
            source,
        };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, Box::new(e)))?;

    // BTreeMap: the file lists tensors in name order whatever the model layout.
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (i, block) in model.layers.iter().enumerate() {
        for proj in Proj::ALL {
            if let Some(lora) = &block.linear(proj).lora {
                let path = proj.module_path(i);
                tensors.insert(tensor_name(&path, "lora_A"), lora.a.as_tensor().detach());
                tensors.insert(tensor_name(&path, "lora_B"), lora.b.as_tensor().detach());
            }
        }
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(&tensors, Some(metadata), &weights_path)
        .map_err(|e| write_error(&weights_path, Box::new(e)))?;

    let config_json = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model.display().to_string(),
        "r": config.r,
        "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout,
        "target_modules": parse_targets(config)?.iter().map(|p| p.peft_name()).collect::<Vec<_>>(),
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "layers_to_transform": null,
        "rank_pattern": {},
        "alpha_pattern": {},
    });
    let config_path = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&config_json)
        .map_err(|e| write_error(&config_path, Box::new(e)))?;
    std::fs::write(&config_path, text + "\n")
        .map_err(|e| write_error(&config_path, Box::new(e)))?;
    Ok(())
}

/// Reads `dir/adapter_config.json` into a [`LoraConfig`], rejecting PEFT
/// options that this engine does not implement.
pub fn read_config(dir: &Path) -> Result<LoraConfig, AdapterError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| AdapterError::Read {
        path: path.clone(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|source| AdapterError::Parse {
        path: path.clone(),
        source,
    })?;
    let field_error = |field: &str, problem: String| AdapterError::Field {
        path: path.clone(),
        field: field.to_owned(),
        problem,
    };

    if let Some(kind) = json.get("peft_type").and_then(Value::as_str)
        && kind != "LORA"
    {
        return Err(field_error(
            "peft_type",
            format!("is \"{kind}\"; only LORA adapters load"),
        ));
    }
    let r = json
        .get("r")
        .and_then(Value::as_u64)
        .filter(|&r| r > 0)
        .ok_or_else(|| field_error("r", "is missing or not a positive integer".into()))?
        as usize;
    let lora_alpha = json
        .get("lora_alpha")
        .and_then(Value::as_f64)
        .ok_or_else(|| field_error("lora_alpha", "is missing or not a number".into()))?;
    let lora_dropout = json
        .get("lora_dropout")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let target_modules = match json.get("target_modules") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    field_error("target_modules", format!("entry {v} is not a string"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(pattern)) => {
            return Err(field_error(
                "target_modules",
                format!("is the pattern \"{pattern}\"; list the module names instead"),
            ));
        }
        _ => {
            return Err(field_error(
                "target_modules",
                "is missing or not a list".into(),
            ));
        }
    };

    let unsupported_true = ["use_rslora", "use_dora", "fan_in_fan_out", "lora_bias"];
    for field in unsupported_true {
        if json.get(field).and_then(Value::as_bool) == Some(true) {
            return Err(field_error(field, "is true, which is not supported".into()));
        }
    }
    if let Some(bias) = json.get("bias").and_then(Value::as_str)
        && bias != "none"
    {
        return Err(field_error(
            "bias",
            format!("is \"{bias}\"; only \"none\" is supported"),
        ));
    }
    for field in ["rank_pattern", "alpha_pattern"] {
        if json
            .get(field)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(field_error(
                field,
                "is not empty; per-module ranks are not supported".into(),
            ));
        }
    }
    for field in [
        "modules_to_save",
        "layers_to_transform",
        "trainable_token_indices",
    ] {
        if json.get(field).is_some_and(|v| !v.is_null()) {
            return Err(field_error(field, "is set, which is not supported".into()));
        }
    }

    let config = LoraConfig {
        r,
        lora_alpha,
        lora_dropout,
        target_modules,
    };
    canonical(&config).map_err(|e| field_error("target_modules", e.to_string()))
}

/// Loads the adapter in `dir` onto `model`, replacing any adapter it has.
pub fn load(model: &mut Llama, dir: &Path) -> Result<LoraConfig, AdapterError> {
    let config = read_config(dir)?;
    let targets = parse_targets(&config)?;
    let path = dir.join(WEIGHTS_FILE);
    let tensor_error = |name: &str, problem: String| AdapterError::Tensor {
        path: path.clone(),
        name: name.to_owned(),
        problem,
    };
    let bytes = std::fs::read(&path).map_err(|source| AdapterError::Read {
        path: path.clone(),
        source,
    })?;
    let mut stored = candle_core::safetensors::load_buffer(&bytes, model.device())
        .map_err(|e| tensor_error("(header)", format!("cannot be read: {e}")))?;

    let scaling = config.lora_alpha / config.r as f64;
    let mut loras = Vec::new();
    for (i, block) in model.layers.iter().enumerate() {
        for &proj in &targets {
            let linear = block.linear(proj);
            let module = proj.module_path(i);
            let mut take = |factor: &str, shape: (usize, usize)| -> Result<Var, AdapterError> {
                let name = tensor_name(&module, factor);
                let tensor = stored
                    .remove(&name)
                    .ok_or_else(|| tensor_error(&name, "is missing".into()))?;
                if tensor.dims() != [shape.0, shape.1] {
                    return Err(tensor_error(
                        &name,
                        format!(
                            "has shape {:?}, expected {:?}",
                            tensor.dims(),
                            [shape.0, shape.1]
                        ),
                    ));
                }
                Ok(Var::from_tensor(&tensor.to_dtype(DType::F32)?)?)
            };
            let a = take("lora_A", (config.r, linear.in_features()))?;
            let b = take("lora_B", (linear.out_features(), config.r))?;
            loras.push((
                i,
                proj,
                Lora {
                    a,
                    b,
                    scaling,
                    dropout: config.lora_dropout,
                },
            ));
        }
    }
    if let Some(extra) = stored.keys().min() {
        return Err(tensor_error(
            extra,
            "is not a LoRA factor of a target module; this adapter has modules the engine cannot load".into(),
        ));
    }

    remove(model);
    for (i, proj, lora) in loras {
        model.layers[i].linear_mut(proj).lora = Some(lora);
    }
    Ok(config)
}

/// Folds every adapter into its base weight, leaving a plain model.
pub fn merge(model: &mut Llama) -> Result<(), AdapterError> {
    for block in &mut model.layers {
        for proj in Proj::ALL {
            block.linear_mut(proj).merge()?;
        }
    }
    Ok(())
}
