//! Linear layers with frozen base weights and optional LoRA adapters
//! (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models"),
//! and the adapter file format of Hugging Face PEFT.
//!
//! A LoRA linear computes `x Wᵀ + scaling · B(A(dropout(x)))` with
//! `scaling = lora_alpha / r`, A of shape (r, in) and B of shape (out, r), as
//! PEFT does. A starts Kaiming-uniform (bound `1/sqrt(in)`), B starts at zero,
//! so a fresh adapter leaves the model unchanged. A and B are float32
//! `Var`s whatever the base dtype. Dropout applies only when the caller passes
//! a training RNG.
//!
//! The base weight never receives a gradient (see [`frozen_matmul`]).
//!
//! PEFT format: `adapter_config.json` (`r`, `lora_alpha`, `lora_dropout`,
//! `target_modules`, ...) and `adapter_model.safetensors` with tensors named
//! `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` etc.

use candle_core::{DType, Module, Tensor, Var};

pub use super::matmul::frozen_matmul;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The seven projections of a LLaMA block that LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Proj {
    pub const ALL: [Proj; 7] = [
        Proj::Q,
        Proj::K,
        Proj::V,
        Proj::O,
        Proj::Gate,
        Proj::Up,
        Proj::Down,
    ];

    /// The module name PEFT's `target_modules` uses.
    pub fn peft_name(self) -> &'static str {
        match self {
            Proj::Q => "q_proj",
            Proj::K => "k_proj",
            Proj::V => "v_proj",
            Proj::O => "o_proj",
            Proj::Gate => "gate_proj",
            Proj::Up => "up_proj",
            Proj::Down => "down_proj",
        }
    }

    /// Parses a `target_modules` entry.
    pub fn from_peft_name(name: &str) -> Option<Proj> {
        Proj::ALL.into_iter().find(|p| p.peft_name() == name)
    }

    /// The module path inside a LLaMA checkpoint, e.g. `model.layers.3.mlp.up_proj`.
    pub fn module_path(self, layer: usize) -> String {
        let parent = match self {
            Proj::Q | Proj::K | Proj::V | Proj::O => "self_attn",
            Proj::Gate | Proj::Up | Proj::Down => "mlp",
        };
        format!("model.layers.{layer}.{parent}.{}", self.peft_name())
    }
}

/// The LoRA factors of one linear layer.
#[derive(Debug, Clone)]
pub struct Lora {
    /// (r, in_features), float32.
    pub a: Var,
    /// (out_features, r), float32.
    pub b: Var,
    pub scaling: f64,
    pub dropout: f64,
}

impl Lora {
    /// A fresh adapter as PEFT initialises it: A uniform in ±1/sqrt(in), B zero.
    pub fn init(
        in_features: usize,
        out_features: usize,
        r: usize,
        scaling: f64,
        dropout: f64,
        rng: &mut ChaCha8Rng,
        device: &candle_core::Device,
    ) -> candle_core::Result<Self> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let a: Vec<f32> = (0..r * in_features)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (r, in_features), device)?)?;
        let b = Var::zeros((out_features, r), DType::F32, device)?;
        Ok(Self {
            a,
            b,
            scaling,
            dropout,
        })
    }

    /// The low-rank update `scaling · B A`, shape (out, in), float32.
    pub fn delta_weight(&self) -> candle_core::Result<Tensor> {
        self.b.as_tensor().matmul(self.a.as_tensor())? * self.scaling
    }
}

/// A linear layer without bias: a frozen weight plus an optional adapter.
#[derive(Debug, Clone)]
pub struct Linear {
    /// (out_features, in_features), in the model dtype.
    pub weight: Tensor,
    pub lora: Option<Lora>,
}

impl Linear {
    pub fn new(weight: Tensor) -> Self {
        Self { weight, lora: None }
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims2().map(|(_, i)| i).unwrap_or(0)
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims2().map(|(o, _)| o).unwrap_or(0)
    }

    /// `x` (rows, in) to (rows, out). `dropout_rng` is `Some` only in training.
    pub fn forward(
        &self,
        x: &Tensor,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> candle_core::Result<Tensor> {
        let base = frozen_matmul(x, &self.weight)?;
        let Some(lora) = &self.lora else {
            return Ok(base);
        };
        let dtype = x.dtype();
        let mut input = x.to_dtype(DType::F32)?;
        if let Some(rng) = dropout_rng
            && lora.dropout > 0.0
        {
            input = dropout(&input, lora.dropout, rng)?;
        }
        let update = input
            .matmul(&lora.a.as_tensor().t()?)?
            .matmul(&lora.b.as_tensor().t()?)?;
        base + (update * lora.scaling)?.to_dtype(dtype)?
    }

    /// Folds the adapter into the weight: `W + scaling · B A`, then drops it.
    pub fn merge(&mut self) -> candle_core::Result<()> {
        if let Some(lora) = self.lora.take() {
            let dtype = self.weight.dtype();
            let merged = (self.weight.to_dtype(DType::F32)? + lora.delta_weight()?)?;
            self.weight = merged.to_dtype(dtype)?;
        }
        Ok(())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Linear::forward(self, x, None)
    }
}

/// Inverted dropout with a mask drawn from `rng`: zeroes each element with
/// probability `p` and scales the rest by 1/(1-p).
fn dropout(x: &Tensor, p: f64, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    x * mask
}
