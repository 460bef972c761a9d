//! Token-level cross-entropy with a fused CPU kernel.
//!
//! Composed from candle ops, `log_softmax` plus `gather` makes about six
//! passes over the (targets, vocab) logits forward and more backward; with a
//! 32000-token vocabulary that matrix is 128 MB per 1000 targets, so those
//! passes cost as much as the LM head's matmul. The kernel here reads the
//! logits once forward (a row's log-sum-exp) and once backward (softmax minus
//! the one-hot target), and stores only one float per row in between. Other
//! devices and dtypes use the composed ops, which have the same gradient.

use std::sync::Arc;

use candle_core::{CpuStorage, D, DType, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

/// Cross-entropy of each row of `logits` (rows, vocab) against `targets`
/// (one id per row): `logsumexp(row) - row[target]`, shape (rows,), float32.
pub fn cross_entropy_rows(logits: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let (rows, vocab) = logits.dims2()?;
    if targets.len() != rows {
        candle_core::bail!(
            "cross-entropy: {rows} rows of logits but {} targets",
            targets.len()
        );
    }
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("cross-entropy: target id {bad} is outside the vocabulary of {vocab}");
    }
    let logits = logits.to_dtype(DType::F32)?.contiguous()?;
    if logits.device().is_cpu() {
        return logits.apply_op1(CrossEntropy {
            targets: Arc::new(targets.to_vec()),
        });
    }
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let targets = Tensor::from_slice(targets, (rows, 1), logits.device())?;
    log_probs.gather(&targets, 1)?.squeeze(1)?.neg()
}

struct CrossEntropy {
    targets: Arc<Vec<u32>>,
}

/// The contiguous float32 data of a CPU tensor's storage.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("cross-entropy kernel expects float32 logits");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("cross-entropy kernel expects contiguous logits");
    };
    Ok(&data[start..end])
}

impl candle_core::CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, vocab) = layout.shape().dims2()?;
        let logits = f32_slice(storage, layout)?;
        let losses: Vec<f32> = logits
            .par_chunks(vocab)
            .zip(self.targets.par_iter())
            .map(|(row, &target)| log_sum_exp(row) - row[target as usize])
            .collect();
        Ok((CpuStorage::F32(losses), Shape::from(rows)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (rows, vocab) = arg.dims2()?;
        let losses = res.to_vec1::<f32>()?;
        let upstream = grad_res.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let (storage, layout) = arg.storage_and_layout();
        let Storage::Cpu(storage) = &*storage else {
            candle_core::bail!(
                "cross-entropy kernel ran on a CPU tensor that is no longer on the CPU"
            );
        };
        let logits = f32_slice(storage, layout)?;

        // d loss / d logit_j = softmax_j - [j == target]; the row's
        // log-sum-exp is loss + logit[target], so it need not be recomputed.
        let mut grad = vec![0f32; rows * vocab];
        grad.par_chunks_mut(vocab)
            .zip(logits.par_chunks(vocab))
            .enumerate()
            .for_each(|(i, (out, row))| {
                let target = self.targets[i] as usize;
                let lse = losses[i] + row[target];
                let g = upstream[i];
                for (o, &x) in out.iter_mut().zip(row) {
                    *o = (x - lse).exp() * g;
                }
                out[target] -= g;
            });
        Ok(Some(Tensor::from_vec(grad, (rows, vocab), arg.device())?))
    }
}

fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    max + sum.ln()
}
