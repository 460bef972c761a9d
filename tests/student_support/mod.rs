//! Shared helpers of the student engine tests: the tiny-llama fixture and
//! the Hugging Face outputs recorded for it.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use llm2llm::student::{LoadOptions, Student};
use serde_json::Value;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama")
}

pub fn model_dir() -> PathBuf {
    fixture_dir().join("model")
}

pub fn load_student() -> Student {
    Student::load(&model_dir(), &LoadOptions::default()).expect("the fixture model loads")
}

pub fn expected() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json"))
        .expect("expected.json is readable");
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

/// A logit matrix recorded by transformers, (seq_len, vocab).
pub fn expected_tensor(name: &str) -> Tensor {
    let mut tensors =
        candle_core::safetensors::load(fixture_dir().join("expected.safetensors"), &Device::Cpu)
            .expect("expected.safetensors is readable");
    tensors.remove(name).expect("the recorded tensor exists")
}

pub fn ids_of(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("a list of ids")
        .iter()
        .map(|v| v.as_u64().expect("an id") as u32)
        .collect()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .expect("same shapes")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flatten")
        .max(0)
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar")
}

/// Copies the fixture model directory into a temp dir, for tests that break it.
pub fn copy_model(from: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(from).expect("fixture dir") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}
