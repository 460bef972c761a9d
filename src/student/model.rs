//! The LLaMA decoder (Touvron et al., 2023) as Hugging Face transformers
//! implements it: token embeddings, pre-norm blocks of RMSNorm, rotary
//! position embeddings (rotate-half layout), grouped-query causal attention
//! and a SwiGLU MLP, a final RMSNorm and the LM head.
//!
//! One forward serves training and generation: it takes explicit positions
//! and an additive attention mask, so a batch may be padded on either side,
//! and an optional KV cache. Every op on it has a gradient (no fused candle
//! op that detaches its output), so training may use it; the base weights
//! are constants and only LoRA factors are `Var`s.

use candle_core::{D, DType, Device, Tensor};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::LlamaConfig;
use super::loader::{WeightError, Weights};
use super::lora::{Linear, Proj, frozen_matmul};

/// One decoder block.
#[derive(Debug, Clone)]
pub struct Block {
    input_norm: Tensor,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    post_attention_norm: Tensor,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Block {
    pub fn linear(&self, proj: Proj) -> &Linear {
        match proj {
            Proj::Q => &self.q_proj,
            Proj::K => &self.k_proj,
            Proj::V => &self.v_proj,
            Proj::O => &self.o_proj,
            Proj::Gate => &self.gate_proj,
            Proj::Up => &self.up_proj,
            Proj::Down => &self.down_proj,
        }
    }

    pub fn linear_mut(&mut self, proj: Proj) -> &mut Linear {
        match proj {
            Proj::Q => &mut self.q_proj,
            Proj::K => &mut self.k_proj,
            Proj::V => &mut self.v_proj,
            Proj::O => &mut self.o_proj,
            Proj::Gate => &mut self.gate_proj,
            Proj::Up => &mut self.up_proj,
            Proj::Down => &mut self.down_proj,
        }
    }
}

/// Keys and values of the positions seen so far, per layer, in buffers
/// preallocated for `capacity` positions: each (batch, kv_heads, capacity,
/// head_dim), of which the first `len` positions are filled. Writing into a
/// buffer instead of concatenating keeps each decoding step O(new tokens).
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache for `num_layers` layers and up to `capacity` positions
    /// (it grows if more arrive).
    pub fn new(num_layers: usize, capacity: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            capacity: capacity.max(1),
            len: 0,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `k` and `v` (batch, kv_heads, seq, head_dim) of `layer` and
    /// returns all keys and values so far. `len` advances once per forward,
    /// in [`Llama::forward_hidden`].
    fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (batch, kv_heads, seq, head_dim) = k.dims4()?;
        let needed = self.len + seq;
        let slot = &mut self.layers[layer];
        let grow = match slot {
            Some((buffer, _)) => buffer.dim(2)? < needed,
            None => true,
        };
        if grow {
            let capacity = needed.max(self.capacity).max(2 * self.len);
            let shape = (batch, kv_heads, capacity, head_dim);
            let new_k = Tensor::zeros(shape, k.dtype(), k.device())?;
            let new_v = Tensor::zeros(shape, v.dtype(), v.device())?;
            if let Some((old_k, old_v)) = slot.take()
                && self.len > 0
            {
                new_k.slice_set(&old_k.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                new_v.slice_set(&old_v.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
            *slot = Some((new_k, new_v));
        }
        let (buffer_k, buffer_v) = slot.as_ref().expect("the buffer was allocated above");
        buffer_k.slice_set(&k.contiguous()?, 2, self.len)?;
        buffer_v.slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((
            buffer_k.narrow(2, 0, needed)?,
            buffer_v.narrow(2, 0, needed)?,
        ))
    }
}

/// How a forward pass runs.
pub enum Pass<'a> {
    /// No gradient is needed, so candle's fused kernels for RMSNorm, RoPE
    /// and softmax (which detach their output) may be used.
    Inference,
    /// Every op keeps its gradient. `dropout` is `Some` only when training,
    /// and then applies LoRA dropout with masks drawn from it.
    Autograd { dropout: Option<&'a mut ChaCha8Rng> },
}

/// A LLaMA causal LM.
#[derive(Debug, Clone)]
pub struct Llama {
    pub config: LlamaConfig,
    embed_tokens: Tensor,
    pub layers: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    /// (head_dim / 2,), float32: `1 / theta^(2i / head_dim)`.
    inv_freq: Tensor,
    device: Device,
    dtype: DType,
}

impl Llama {
    /// Loads every weight of `config` from `weights`, checking shapes.
    pub fn load(config: &LlamaConfig, weights: &Weights) -> Result<Self, WeightError> {
        let c = config;
        let (hidden, inter, d) = (c.hidden_size, c.intermediate_size, c.head_dim);
        let q_out = c.num_attention_heads * d;
        let kv_out = c.num_key_value_heads * d;

        let embed_tokens = weights.get("model.embed_tokens.weight", &[c.vocab_size, hidden])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let linear = |proj: Proj, shape: [usize; 2]| -> Result<Linear, WeightError> {
                let name = format!("{}.weight", proj.module_path(i));
                Ok(Linear::new(weights.get(&name, &shape)?))
            };
            layers.push(Block {
                input_norm: weights.get(
                    &format!("model.layers.{i}.input_layernorm.weight"),
                    &[hidden],
                )?,
                q_proj: linear(Proj::Q, [q_out, hidden])?,
                k_proj: linear(Proj::K, [kv_out, hidden])?,
                v_proj: linear(Proj::V, [kv_out, hidden])?,
                o_proj: linear(Proj::O, [hidden, q_out])?,
                post_attention_norm: weights.get(
                    &format!("model.layers.{i}.post_attention_layernorm.weight"),
                    &[hidden],
                )?,
                gate_proj: linear(Proj::Gate, [inter, hidden])?,
                up_proj: linear(Proj::Up, [inter, hidden])?,
                down_proj: linear(Proj::Down, [hidden, inter])?,
            });
        }
        let norm = weights.get("model.norm.weight", &[hidden])?;
        // A tied checkpoint may still store lm_head.weight; prefer it when present.
        let lm_head = if weights.contains("lm_head.weight") || !c.tie_word_embeddings {
            weights.get("lm_head.weight", &[c.vocab_size, hidden])?
        } else {
            embed_tokens.clone()
        };
        let device = embed_tokens.device().clone();
        let dtype = embed_tokens.dtype();
        Self::assemble(config, embed_tokens, layers, norm, lm_head, &device, dtype).map_err(
            |source| WeightError::Load {
                name: "rotary embedding frequencies".into(),
                path: Default::default(),
                source,
            },
        )
    }

    /// A model with random weights (normal, std 0.02; norms at 1), for benchmarks.
    pub fn random(
        config: &LlamaConfig,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> candle_core::Result<Self> {
        let c = config;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = |rows: usize, cols: usize| -> candle_core::Result<Tensor> {
            // Sum of uniforms: close enough to a normal for a benchmark and cheap.
            let values: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    let u: f32 = (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0;
                    u * 0.02 * 3f32.sqrt()
                })
                .collect();
            Tensor::from_vec(values, (rows, cols), device)?.to_dtype(dtype)
        };
        let ones = |n: usize| Tensor::ones(n, dtype, device);
        let (hidden, inter, d) = (c.hidden_size, c.intermediate_size, c.head_dim);
        let q_out = c.num_attention_heads * d;
        let kv_out = c.num_key_value_heads * d;
        let embed_tokens = normal(c.vocab_size, hidden)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for _ in 0..c.num_hidden_layers {
            layers.push(Block {
                input_norm: ones(hidden)?,
                q_proj: Linear::new(normal(q_out, hidden)?),
                k_proj: Linear::new(normal(kv_out, hidden)?),
                v_proj: Linear::new(normal(kv_out, hidden)?),
                o_proj: Linear::new(normal(hidden, q_out)?),
                post_attention_norm: ones(hidden)?,
                gate_proj: Linear::new(normal(inter, hidden)?),
                up_proj: Linear::new(normal(inter, hidden)?),
                down_proj: Linear::new(normal(hidden, inter)?),
            });
        }
        let norm = ones(hidden)?;
        let lm_head = if c.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            normal(c.vocab_size, hidden)?
        };
        Self::assemble(config, embed_tokens, layers, norm, lm_head, device, dtype)
    }

    fn assemble(
        config: &LlamaConfig,
        embed_tokens: Tensor,
        layers: Vec<Block>,
        norm: Tensor,
        lm_head: Tensor,
        device: &Device,
        dtype: DType,
    ) -> candle_core::Result<Self> {
        // Computed in float32 as transformers does, so positions agree to the last bit
        // that matters for 1e-4 logits.
        let d = config.head_dim;
        let theta = config.rope_theta as f32;
        let inv_freq: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / d as f32))
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, d / 2, device)?;
        Ok(Self {
            config: config.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
            device: device.clone(),
            dtype,
        })
    }

    /// Every base weight under its Hugging Face checkpoint name, in a fixed
    /// order. A tied LM head is left out, as transformers leaves it out.
    pub fn named_weights(&self) -> Vec<(String, Tensor)> {
        let mut weights = vec![(
            "model.embed_tokens.weight".to_string(),
            self.embed_tokens.clone(),
        )];
        for (i, block) in self.layers.iter().enumerate() {
            weights.push((
                format!("model.layers.{i}.input_layernorm.weight"),
                block.input_norm.clone(),
            ));
            weights.push((
                format!("model.layers.{i}.post_attention_layernorm.weight"),
                block.post_attention_norm.clone(),
            ));
            for proj in Proj::ALL {
                weights.push((
                    format!("{}.weight", proj.module_path(i)),
                    block.linear(proj).weight.clone(),
                ));
            }
        }
        weights.push(("model.norm.weight".to_string(), self.norm.clone()));
        if !self.config.tie_word_embeddings {
            weights.push(("lm_head.weight".to_string(), self.lm_head.clone()));
        }
        weights
    }

    /// Whether any projection carries a LoRA adapter.
    pub fn has_adapter(&self) -> bool {
        self.layers
            .iter()
            .any(|block| Proj::ALL.iter().any(|&p| block.linear(p).lora.is_some()))
    }

    /// A copy with every adapter folded into its base weight. Unchanged
    /// weights are shared, not copied. Inference on it skips the two
    /// low-rank products per projection.
    pub fn merged(&self) -> candle_core::Result<Llama> {
        let mut merged = self.clone();
        for block in &mut merged.layers {
            for proj in Proj::ALL {
                block.linear_mut(proj).merge()?;
            }
        }
        Ok(merged)
    }

    /// Number of base weights (an untied LM head counted separately).
    pub fn parameter_count(&self) -> usize {
        let mut count = self.embed_tokens.elem_count() + self.norm.elem_count();
        if !self.config.tie_word_embeddings {
            count += self.lm_head.elem_count();
        }
        for block in &self.layers {
            count += block.input_norm.elem_count() + block.post_attention_norm.elem_count();
            for proj in Proj::ALL {
                count += block.linear(proj).weight.elem_count();
            }
        }
        count
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Final hidden states (batch, seq, hidden) of `input_ids` (batch, seq).
    ///
    /// `positions` (batch, seq) are the RoPE positions of each token, so a
    /// left-padded row starts at 0 at its first real token. `mask` is
    /// additive, float32, (batch, 1, seq, cached + seq): 0 where a query may
    /// attend to a key, a large negative number where it may not. With a
    /// cache, keys and values are appended to it.
    pub fn forward_hidden(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
        pass: Pass<'_>,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let (fused, mut dropout) = match pass {
            Pass::Inference => (true, None),
            Pass::Autograd { dropout } => (false, dropout),
        };
        let (cos, sin) = self.rope_tables(positions)?;
        let mut x = self
            .embed_tokens
            .index_select(&input_ids.flatten_all()?, 0)?;
        for (i, block) in self.layers.iter().enumerate() {
            let step = BlockStep {
                layer: i,
                batch,
                seq,
                cos: &cos,
                sin: &sin,
                mask,
                fused,
            };
            x = self.block_forward(
                block,
                &x,
                &step,
                cache.as_deref_mut(),
                dropout.as_deref_mut(),
            )?;
        }
        if let Some(cache) = cache {
            cache.len += seq;
        }
        let x = if fused {
            candle_nn::ops::rms_norm(&x, &self.norm, self.config.rms_norm_eps as f32)?
        } else {
            rms_norm(&x, &self.norm, self.config.rms_norm_eps)?
        };
        x.reshape((batch, seq, self.config.hidden_size))
    }

    /// Logits (rows, vocab) of hidden states (rows, hidden).
    pub fn lm_head(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        frozen_matmul(hidden, &self.lm_head)
    }

    /// Logits (seq, vocab) of one unpadded sequence, float32, computed
    /// without gradients.
    pub fn logits(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        self.logits_with(ids, Pass::Inference)
    }

    /// Logits (seq, vocab) of one unpadded sequence, float32, computed with `pass`.
    pub fn logits_with(&self, ids: &[u32], pass: Pass<'_>) -> candle_core::Result<Tensor> {
        let seq = ids.len();
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let positions = Tensor::arange(0u32, seq as u32, &self.device)?.unsqueeze(0)?;
        let mask = attention_mask(&[vec![true; seq]], 0, &self.device)?;
        let hidden = self.forward_hidden(&input, &positions, &mask, None, pass)?;
        self.lm_head(&hidden.squeeze(0)?)?.to_dtype(DType::F32)
    }

    /// cos and sin, each (batch, 1, seq, head_dim / 2) in the model dtype.
    fn rope_tables(&self, positions: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (batch, seq) = positions.dims2()?;
        let half = self.config.head_dim / 2;
        let angles = positions
            .to_dtype(DType::F32)?
            .reshape((batch * seq, 1))?
            .broadcast_mul(&self.inv_freq.reshape((1, half))?)?
            .reshape((batch, 1, seq, half))?;
        Ok((
            angles.cos()?.to_dtype(self.dtype)?,
            angles.sin()?.to_dtype(self.dtype)?,
        ))
    }

    /// One pre-norm block on `x` (batch * seq, hidden).
    fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        step: &BlockStep<'_>,
        cache: Option<&mut KvCache>,
        mut dropout: Option<&mut ChaCha8Rng>,
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let (heads, kv_heads, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let (batch, seq) = (step.batch, step.seq);
        let norm = |x: &Tensor, weight: &Tensor| {
            if step.fused {
                candle_nn::ops::rms_norm(x, weight, c.rms_norm_eps as f32)
            } else {
                rms_norm(x, weight, c.rms_norm_eps)
            }
        };
        let rotate = |x: &Tensor| {
            if step.fused {
                let (b, _, t, half) = step.cos.dims4()?;
                let cos = step.cos.reshape((b, t, half))?;
                let sin = step.sin.reshape((b, t, half))?;
                candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
            } else {
                rope(x, step.cos, step.sin)
            }
        };

        let h = norm(x, &block.input_norm)?;
        let q = block.q_proj.forward(&h, dropout.as_deref_mut())?;
        let k = block.k_proj.forward(&h, dropout.as_deref_mut())?;
        let v = block.v_proj.forward(&h, dropout.as_deref_mut())?;
        let q = rotate(&q.reshape((batch, seq, heads, d))?.transpose(1, 2)?)?;
        let k = rotate(&k.reshape((batch, seq, kv_heads, d))?.transpose(1, 2)?)?;
        let v = v
            .reshape((batch, seq, kv_heads, d))?
            .transpose(1, 2)?
            .contiguous()?;

        let (k, v) = match cache {
            Some(cache) => cache.append(step.layer, &k, &v)?,
            None => (k, v),
        };
        let keys = k.dim(2)?;

        // Grouped-query attention without copying keys: the query heads that
        // share a key/value head are stacked along the sequence axis, so
        // (batch, kv_heads, group * seq, d) multiplies (batch, kv_heads, d, keys).
        let group = heads / kv_heads;
        let q = q.contiguous()?.reshape((batch, kv_heads, group * seq, d))?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?
            .reshape((batch, heads, seq, keys))?
            .to_dtype(DType::F32)?
            .broadcast_add(step.mask)?;
        let probs = if step.fused {
            candle_nn::ops::softmax_last_dim(&scores)?
        } else {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        };
        let probs = probs
            .to_dtype(self.dtype)?
            .reshape((batch, kv_heads, group * seq, keys))?;
        let attn = probs
            .matmul(&v)?
            .reshape((batch, heads, seq, d))?
            .transpose(1, 2)?
            .reshape((batch * seq, heads * d))?;
        let attn = block.o_proj.forward(&attn, dropout.as_deref_mut())?;
        let x = (x + attn)?;

        let h = norm(&x, &block.post_attention_norm)?;
        let gate = block.gate_proj.forward(&h, dropout.as_deref_mut())?;
        let up = block.up_proj.forward(&h, dropout.as_deref_mut())?;
        let mlp = block.down_proj.forward(&(gate.silu()? * up)?, dropout)?;
        x + mlp
    }
}

/// What every block of one forward pass shares.
struct BlockStep<'a> {
    layer: usize,
    batch: usize,
    seq: usize,
    /// (batch, 1, seq, head_dim / 2), model dtype.
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: &'a Tensor,
    /// Whether to use candle's fused kernels, which have no gradient.
    fused: bool,
}

/// RMSNorm from primitives (the fused candle op drops gradients), computed
/// in float32 as transformers does: `weight * (x / sqrt(mean(x²) + eps))`.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(variance + eps)?.sqrt()?)?;
    normed.to_dtype(dtype)?.broadcast_mul(weight)
}

/// Rotate-half RoPE from primitives: `x` (batch, heads, seq, d), `cos`/`sin`
/// (batch, 1, seq, d / 2).
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let first = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let second = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Tensor::cat(&[first, second], D::Minus1)
}

/// The additive mask value for a forbidden query/key pair. Finite, so that a
/// row with every key masked (a padding query) gives a uniform softmax, not NaN.
const MASKED: f32 = f32::MIN;

/// Additive causal + padding mask (batch, 1, seq, cached + seq), float32.
///
/// `valid[b]` marks the real (non-padding) tokens of row `b` over the whole
/// timeline, cached positions first; the last `seq` entries are the queries.
/// A query attends to keys at or before it that are real tokens.
pub fn attention_mask(
    valid: &[Vec<bool>],
    cached: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let batch = valid.len();
    let keys = valid.first().map_or(0, Vec::len);
    let seq = keys - cached;
    let mut mask = vec![MASKED; batch * seq * keys];
    for (b, row) in valid.iter().enumerate() {
        for q in 0..seq {
            let query_position = cached + q;
            let out = &mut mask[(b * seq + q) * keys..(b * seq + q + 1) * keys];
            for (k, allowed) in out.iter_mut().enumerate().take(query_position + 1) {
                if row[k] {
                    *allowed = 0.0;
                }
            }
        }
    }
    Tensor::from_vec(mask, (batch, 1, seq, keys), device)
}
