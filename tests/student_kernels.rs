//! The fused cross-entropy and frozen-weight matmul kernels against
//! candle's composed ops.

use candle_core::{D, Device, Tensor, Var};
use llm2llm::student::loss::cross_entropy_rows;
use llm2llm::student::matmul::frozen_matmul;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn composed(logits: &Tensor, targets: &[u32]) -> Tensor {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
    let targets = Tensor::from_slice(targets, (targets.len(), 1), &Device::Cpu).unwrap();
    log_probs
        .gather(&targets, 1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .neg()
        .unwrap()
}

fn random_logits() -> (Var, Vec<u32>) {
    let logits = (Tensor::randn(0f32, 3.0, (7, 301), &Device::Cpu).unwrap() + 5.0).unwrap();
    let targets = vec![0, 300, 17, 150, 150, 2, 99];
    (Var::from_tensor(&logits).unwrap(), targets)
}

#[test]
fn fused_loss_matches_composed() {
    let (logits, targets) = random_logits();
    let fused = cross_entropy_rows(logits.as_tensor(), &targets).unwrap();
    let reference = composed(logits.as_tensor(), &targets);
    assert!(max_abs_diff(&fused, &reference) < 1e-5);
}

#[test]
fn fused_gradient_matches_composed() {
    let (logits, targets) = random_logits();
    // Unequal row weights check that the upstream gradient is applied per row.
    let weights = Tensor::new(&[1f32, 2.0, 0.5, 1.0, 3.0, 0.0, 1.5], &Device::Cpu).unwrap();
    let fused = (cross_entropy_rows(logits.as_tensor(), &targets).unwrap() * &weights)
        .unwrap()
        .sum_all()
        .unwrap();
    let reference = (composed(logits.as_tensor(), &targets) * &weights)
        .unwrap()
        .sum_all()
        .unwrap();
    let fused_grad = fused
        .backward()
        .unwrap()
        .get(logits.as_tensor())
        .unwrap()
        .clone();
    let reference_grad = reference
        .backward()
        .unwrap()
        .get(logits.as_tensor())
        .unwrap()
        .clone();
    assert!(max_abs_diff(&fused_grad, &reference_grad) < 1e-5);
}

#[test]
fn target_outside_vocabulary_is_rejected() {
    let (logits, _) = random_logits();
    let err = cross_entropy_rows(logits.as_tensor(), &[0, 1, 2, 3, 4, 5, 301]).unwrap_err();
    assert!(err.to_string().contains("301"), "{err}");
}

#[test]
fn frozen_matmul_matches_matmul() {
    // 5 rows take the small-row kernel, 40 the GEMM; 300 is not a multiple
    // of the kernel's 16-float step.
    let weight = Tensor::randn(0f32, 1.0, (70, 300), &Device::Cpu).unwrap();
    for rows in [1, 5, 16, 17, 40] {
        let x = Tensor::randn(0f32, 1.0, (rows, 300), &Device::Cpu).unwrap();
        let fast = frozen_matmul(&x, &weight).unwrap();
        let reference = x.matmul(&weight.t().unwrap()).unwrap();
        let diff = max_abs_diff(&fast, &reference);
        assert!(diff < 1e-4, "{rows} rows: max |diff| {diff}");
    }
}

#[test]
fn frozen_matmul_gradient_reaches_input_only() {
    let weight = Tensor::randn(0f32, 1.0, (70, 300), &Device::Cpu).unwrap();
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (8, 300), &Device::Cpu).unwrap()).unwrap();
    let frozen = frozen_matmul(x.as_tensor(), &weight)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let plain = x
        .as_tensor()
        .matmul(&weight.t().unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let frozen_grads = frozen.backward().unwrap();
    let plain_grads = plain.backward().unwrap();
    let frozen_grad = frozen_grads.get(x.as_tensor()).unwrap();
    let plain_grad = plain_grads.get(x.as_tensor()).unwrap();
    assert!(max_abs_diff(frozen_grad, plain_grad) < 1e-2);
    assert!(frozen_grads.get(&weight).is_none());
}
