//! Checkpoint loading: both config.json layouts, and errors that name the
//! file and the tensor or field for broken checkpoints.

mod student_support;

use candle_core::{DType, Device, Tensor};
use llm2llm::student::{LoadOptions, Student};
use student_support::*;

fn load_error(dir: &std::path::Path) -> String {
    match Student::load(dir, &LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn edit_config(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

#[test]
fn llama2_config_layout_loads() {
    // LLaMA-2 as published: top-level rope_theta, no head_dim, torch_dtype.
    let dir = copy_model(&model_dir());
    edit_config(dir.path(), |json| {
        let obj = json.as_object_mut().unwrap();
        obj.remove("rope_parameters");
        obj.remove("head_dim");
        obj.remove("dtype");
        obj.insert("rope_theta".into(), 10000.0.into());
        obj.insert("torch_dtype".into(), "float32".into());
    });
    let student = Student::load(dir.path(), &LoadOptions::default()).unwrap();
    let ids = ids_of(&expected()["cases"][0]["ids"]);
    let diff = max_abs_diff(
        &student.model().logits(&ids).unwrap(),
        &expected_tensor("prompt0.logits"),
    );
    assert!(diff < 1e-4, "max |diff| {diff}");
}

#[test]
fn missing_rope_theta_means_10000() {
    let dir = copy_model(&model_dir());
    edit_config(dir.path(), |json| {
        json.as_object_mut().unwrap().remove("rope_parameters");
    });
    let student = Student::load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(student.model().config.rope_theta, 10000.0);
}

#[test]
fn unknown_rope_scaling_is_rejected() {
    let dir = copy_model(&model_dir());
    edit_config(dir.path(), |json| {
        json["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 4.0});
    });
    let message = load_error(dir.path());
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("rope_scaling"), "{message}");
    assert!(message.contains("yarn"), "{message}");
}

#[test]
fn missing_config_field_is_named() {
    let dir = copy_model(&model_dir());
    edit_config(dir.path(), |json| {
        json.as_object_mut().unwrap().remove("intermediate_size");
    });
    let message = load_error(dir.path());
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("intermediate_size"), "{message}");
}

#[test]
fn missing_weights_file_is_named() {
    let dir = copy_model(&model_dir());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let message = load_error(dir.path());
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn missing_tokenizer_is_named() {
    let dir = copy_model(&model_dir());
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let message = load_error(dir.path());
    assert!(message.contains("tokenizer.json"), "{message}");
}

#[test]
fn missing_shard_is_named() {
    let dir = copy_model(&fixture_dir().join("model-sharded"));
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("model-00002-of-00002.safetensors"),
        "{message}"
    );
    assert!(
        message.contains("model.safetensors.index.json"),
        "{message}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_model(&model_dir());
    let path = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("model.layers.1.mlp.up_proj.weight"),
        "{message}"
    );
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn wrong_tensor_shape_is_named() {
    let dir = copy_model(&model_dir());
    let path = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.insert(
        "model.layers.0.self_attn.k_proj.weight".into(),
        Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let message = load_error(dir.path());
    assert!(
        message.contains("model.layers.0.self_attn.k_proj.weight"),
        "{message}"
    );
    assert!(message.contains("[64, 64]"), "{message}");
    assert!(message.contains("[32, 64]"), "{message}");
}

#[test]
fn bf16_model_tracks_f32_logits() {
    let options = LoadOptions {
        dtype: llm2llm::student::DType::Bf16,
        device: llm2llm::student::DeviceKind::Cpu,
    };
    let student = Student::load(&model_dir(), &options).unwrap();
    let ids = ids_of(&expected()["cases"][0]["ids"]);
    let logits = student.model().logits(&ids).unwrap();
    let diff = max_abs_diff(&logits, &expected_tensor("prompt0.logits"));
    // bf16 keeps 8 mantissa bits; the fixture's logits are of order 10.
    assert!(diff < 0.5, "max |diff| {diff}");
}
