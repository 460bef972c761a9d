//! Products with frozen weights: `x Wᵀ` where `W` (out, in) never needs a
//! gradient.
//!
//! Two costs of candle's matmul are avoided here. Its backward computes the
//! gradient of both operands, so a frozen weight would still cost a
//! weight-gradient product per layer that is thrown away; [`FrozenMatmul`]
//! returns the input's gradient only. And for a few rows (decoding a batch
//! one token at a time) the general GEMM packs the whole weight before
//! multiplying, reading it twice; the small-row kernel here streams each
//! weight row once and dots it with every input row, which is what a
//! memory-bound product needs.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CudaStorage, Layout, MetalStorage, Shape, Tensor};
use rayon::prelude::*;

/// Inputs with at most this many rows use the small-row kernel (float32 on
/// x86-64 with AVX2 and FMA); larger ones use the GEMM.
const SMALL_ROWS: usize = 16;

/// Weight rows per parallel task of the small-row kernel.
const ROWS_PER_TASK: usize = 64;

/// `x` (rows, in) times `weightᵀ` (weight: (out, in)); the backward pass
/// returns the gradient of `x` only.
pub fn frozen_matmul(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    let x = x.contiguous()?;
    if x.track_op() {
        x.apply_op2(weight, FrozenMatmul)
    } else {
        x.apply_op2_no_bwd(weight, &FrozenMatmul)
    }
}

/// Custom op: `lhs (m, k) · rhsᵀ` with `rhs (n, k)` treated as a constant.
struct FrozenMatmul;

impl FrozenMatmul {
    fn dims(lhs: &Layout, rhs: &Layout) -> candle_core::Result<(usize, usize, usize)> {
        let (m, k) = lhs.shape().dims2()?;
        let (n, k2) = rhs.shape().dims2()?;
        if k != k2 {
            candle_core::bail!(
                "frozen matmul: input has {k} features but the weight expects {k2} (input {:?}, weight {:?})",
                lhs.dims(),
                rhs.dims()
            );
        }
        Ok((m, n, k))
    }

    fn forward<S: BackendStorage>(
        lhs: &S,
        lhs_layout: &Layout,
        rhs: &S,
        rhs_layout: &Layout,
    ) -> candle_core::Result<(S, Shape)> {
        let (m, n, k) = Self::dims(lhs_layout, rhs_layout)?;
        let rhs_t = rhs_layout.transpose(0, 1)?;
        let out = lhs.matmul(rhs, (1, m, n, k), lhs_layout, &rhs_t)?;
        Ok((out, Shape::from((m, n))))
    }
}

impl candle_core::CustomOp2 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, n, k) = Self::dims(l1, l2)?;
        if let (CpuStorage::F32(x), CpuStorage::F32(w)) = (s1, s2)
            && m <= SMALL_ROWS
            && let (Some((x0, x1)), Some((w0, w1))) =
                (l1.contiguous_offsets(), l2.contiguous_offsets())
            && let Some(out) = small_rows::matmul(&x[x0..x1], &w[w0..w1], m, n, k)
        {
            return Ok((CpuStorage::F32(out), Shape::from((m, n))));
        }
        Self::forward(s1, l1, s2, l2)
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        Self::forward(s1, l1, s2, l2)
    }

    fn metal_fwd(
        &self,
        s1: &MetalStorage,
        l1: &Layout,
        s2: &MetalStorage,
        l2: &Layout,
    ) -> candle_core::Result<(MetalStorage, Shape)> {
        Self::forward(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        _lhs: &Tensor,
        rhs: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // d(x Wᵀ)/dx = grad · W. The weight is frozen, so it gets no gradient.
        Ok((Some(grad_res.matmul(rhs)?), None))
    }
}

mod small_rows {
    use super::*;

    /// `x (m, k) · wᵀ` with `w (n, k)`, both row-major, or `None` where the
    /// CPU lacks AVX2 and FMA (the caller then uses the GEMM).
    pub fn matmul(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Some(by_weight_rows(x, w, m, n, k));
            }
        }
        let _ = (x, w, m, n, k);
        None
    }

    /// Computes the (n, m) transpose of the product in parallel blocks of
    /// weight rows, then transposes it into (m, n).
    #[cfg(target_arch = "x86_64")]
    fn by_weight_rows(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut transposed = vec![0f32; n * m];
        transposed
            .par_chunks_mut(ROWS_PER_TASK * m)
            .zip(w.par_chunks(ROWS_PER_TASK * k))
            .for_each(|(out, weights)| {
                for (out_row, w_row) in out.chunks_mut(m).zip(weights.chunks(k)) {
                    for (i, o) in out_row.iter_mut().enumerate() {
                        // SAFETY: the caller checked that the CPU has AVX2 and FMA.
                        *o = unsafe { dot_avx2(&x[i * k..(i + 1) * k], w_row) };
                    }
                }
            });
        let mut out = vec![0f32; m * n];
        for (j, column) in transposed.chunks(m).enumerate() {
            for (i, &value) in column.iter().enumerate() {
                out[i * n + j] = value;
            }
        }
        out
    }

    /// Dot product of two equal-length slices with 8-wide FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        use std::arch::x86_64::*;
        let len = a.len().min(b.len());
        let chunks = len / 16;
        // SAFETY: every load reads 8 floats at offsets below 16 * chunks <= len
        // of both slices; unaligned loads have no alignment requirement.
        unsafe {
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            for c in 0..chunks {
                let pa = a.as_ptr().add(c * 16);
                let pb = b.as_ptr().add(c * 16);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa), _mm256_loadu_ps(pb), acc0);
                acc1 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8)), acc1);
            }
            let acc = _mm256_add_ps(acc0, acc1);
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            let mut sum: f32 = lanes.iter().sum();
            for i in chunks * 16..len {
                sum += a[i] * b[i];
            }
            sum
        }
    }
}
