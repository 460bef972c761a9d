//! Greedy batched decoding with a KV cache.
//!
//! Prompts in a batch are left-padded to the longest one; each row's RoPE
//! positions start at 0 at its first real token and padding keys are masked,
//! so a prompt decodes to the same tokens alone or in any batch (up to float
//! rounding of the batched matmuls). Rows that finish keep being fed until
//! the whole batch finishes; their extra tokens are discarded.

use candle_core::{D, Device, Tensor};

use super::model::{KvCache, Llama, Pass, attention_mask};

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Eos,
    Stop,
    Length,
}

impl Finish {
    /// The name the facade reports: "eos", "stop" or "length".
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Eos => "eos",
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Greedily continues each prompt of one batch by up to `max_new_tokens`.
///
/// `eos`: stop a row when it produces this id (the id is not returned).
/// `should_stop(row, new_ids)` is asked after every token; `true` ends that
/// row with [`Finish::Stop`]. Returns each row's new ids and finish reason.
pub fn greedy_batch(
    model: &Llama,
    prompts: &[Vec<u32>],
    max_new_tokens: usize,
    eos: Option<u32>,
    should_stop: &mut dyn FnMut(usize, &[u32]) -> bool,
) -> candle_core::Result<Vec<(Vec<u32>, Finish)>> {
    let batch = prompts.len();
    let mut results: Vec<(Vec<u32>, Option<Finish>)> = vec![(Vec::new(), None); batch];
    if batch == 0 {
        return Ok(Vec::new());
    }
    if max_new_tokens == 0 {
        return Ok(vec![(Vec::new(), Finish::Length); batch]);
    }
    // Decoding with the adapter folded in does one matmul per projection
    // instead of three; the copy is made once per batch.
    let merged;
    let model = if model.has_adapter() {
        merged = model.merged()?;
        &merged
    } else {
        model
    };
    let device = model.device().clone();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if longest == 0 {
        candle_core::bail!("cannot generate from an empty prompt (no tokens, not even <s>)");
    }
    // Padding id: any valid id works because padding keys are masked.
    let pad = eos.unwrap_or(0);

    let mut ids = Vec::with_capacity(batch * longest);
    let mut positions = Vec::with_capacity(batch * longest);
    let mut valid: Vec<Vec<bool>> = Vec::with_capacity(batch);
    for prompt in prompts {
        let padding = longest - prompt.len();
        ids.extend(std::iter::repeat_n(pad, padding).chain(prompt.iter().copied()));
        positions.extend((0..longest).map(|j| j.saturating_sub(padding) as u32));
        valid.push((0..longest).map(|j| j >= padding).collect());
    }
    let mut next_positions: Vec<u32> = prompts.iter().map(|p| p.len() as u32).collect();

    let mut cache = KvCache::new(model.layers.len(), longest + max_new_tokens);
    let mut input = Tensor::from_vec(ids, (batch, longest), &device)?;
    let mut position_tensor = Tensor::from_vec(positions, (batch, longest), &device)?;
    let mut cached = 0;
    for _ in 0..max_new_tokens {
        let mask = attention_mask(&valid, cached, &device)?;
        let seq = input.dim(1)?;
        let hidden = model.forward_hidden(
            &input,
            &position_tensor,
            &mask,
            Some(&mut cache),
            Pass::Inference,
        )?;
        cached += seq;
        let last = hidden.narrow(1, seq - 1, 1)?.squeeze(1)?;
        let next = argmax_rows(&model.lm_head(&last)?)?;

        for (row, &token) in next.iter().enumerate() {
            let (new_ids, finish) = &mut results[row];
            if finish.is_some() {
                continue;
            }
            if Some(token) == eos {
                *finish = Some(Finish::Eos);
                continue;
            }
            new_ids.push(token);
            if should_stop(row, new_ids) {
                *finish = Some(Finish::Stop);
            }
        }
        if results.iter().all(|(_, f)| f.is_some()) {
            break;
        }

        for row in &mut valid {
            row.push(true);
        }
        input = Tensor::from_vec(next, (batch, 1), &device)?;
        position_tensor = Tensor::from_vec(next_positions.clone(), (batch, 1), &device)?;
        for p in &mut next_positions {
            *p += 1;
        }
    }
    Ok(results
        .into_iter()
        .map(|(ids, finish)| (ids, finish.unwrap_or(Finish::Length)))
        .collect())
}

/// Index of the largest logit of each row of (rows, vocab).
fn argmax_rows(logits: &Tensor) -> candle_core::Result<Vec<u32>> {
    logits
        .to_dtype(candle_core::DType::F32)?
        .argmax(D::Minus1)?
        .to_device(&Device::Cpu)?
        .to_vec1::<u32>()
}
