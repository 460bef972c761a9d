//! LoRA adapters: PEFT's file format and arithmetic, merging, gradients and
//! one AdamW step, against the outputs PEFT 0.21 recorded for the tiny-llama
//! fixture (adapter r = 4, lora_alpha = 8, so scaling 2 differs from 1).
//!
//! PEFT compatibility of the files this engine writes was checked outside
//! the test suite (the suite stays Rust-only): an adapter saved by
//! `Student::save_adapter` after a few training steps was loaded with
//! `PeftModel.from_pretrained` onto the fixture model in transformers 5.25 /
//! PEFT 0.21.2 (torch 2.15, CPU, float32), and its logits for the three
//! fixture prompts matched llm2llm's within 1e-4 (see docs/benchmarks.md).

mod student_support;

use candle_core::{Device, Tensor};
use llm2llm::student::model::Pass;
use llm2llm::student::train::{AdamW, Sequence, global_norm, gradients, loss_sum, mean_loss};
use llm2llm::student::{LoraConfig, adapter};
use student_support::*;

fn fixture_adapter() -> std::path::PathBuf {
    fixture_dir().join("adapter")
}

fn all_targets(r: usize, alpha: f64) -> LoraConfig {
    LoraConfig {
        r,
        lora_alpha: alpha,
        lora_dropout: 0.0,
        target_modules: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
        .map(String::from)
        .to_vec(),
    }
}

fn sft_sequence() -> Sequence {
    let sft = &expected()["sft"];
    let prompt_ids = ids_of(&sft["prompt_ids"]);
    let mut ids = prompt_ids.clone();
    ids.extend(ids_of(&sft["answer_ids"]));
    Sequence {
        ids,
        prompt_len: prompt_ids.len(),
    }
}

#[test]
fn peft_adapter_logits_match_reference() {
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    for case in expected()["cases"].as_array().unwrap() {
        let logits = student.model().logits(&ids_of(&case["ids"])).unwrap();
        let reference = expected_tensor(case["lora_logits_tensor"].as_str().unwrap());
        let diff = max_abs_diff(&logits, &reference);
        assert!(
            diff < 1e-4,
            "{}: max |diff| {diff}",
            case["lora_logits_tensor"]
        );
    }
}

#[test]
fn peft_adapter_config_is_read() {
    let config = adapter::read_config(&fixture_adapter()).unwrap();
    assert_eq!(config.r, 4);
    assert_eq!(config.lora_alpha, 8.0);
    assert_eq!(config.target_modules.len(), 7);
}

#[test]
fn fresh_adapter_leaves_logits_unchanged() {
    let mut student = load_student();
    let ids = ids_of(&expected()["cases"][0]["ids"]);
    let before = student.model().logits(&ids).unwrap();
    student.init_adapter(&all_targets(8, 16.0), 7).unwrap();
    let after = student.model().logits(&ids).unwrap();
    assert_eq!(max_abs_diff(&before, &after), 0.0);
}

#[test]
fn merged_matches_unmerged() {
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    let ids = ids_of(&expected()["cases"][1]["ids"]);
    let unmerged = student.model().logits(&ids).unwrap();
    student.merge_adapter().unwrap();
    assert!(student.adapter_config().is_none());
    let merged = student.model().logits(&ids).unwrap();
    let diff = max_abs_diff(&unmerged, &merged);
    assert!(diff < 1e-4, "max |diff| {diff}");
}

#[test]
fn exported_merged_checkpoint_matches_adapter() {
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    student.export_merged(dir.path()).unwrap();

    let exported = llm2llm::student::Student::load(dir.path(), &Default::default()).unwrap();
    assert!(student.adapter_config().is_some());
    for case in expected()["cases"].as_array().unwrap() {
        let logits = exported.model().logits(&ids_of(&case["ids"])).unwrap();
        let reference = expected_tensor(case["lora_logits_tensor"].as_str().unwrap());
        let diff = max_abs_diff(&logits, &reference);
        assert!(
            diff < 1e-4,
            "{}: max |diff| {diff}",
            case["lora_logits_tensor"]
        );
    }
}

#[test]
fn saved_adapter_reloads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    student.save_adapter(dir.path()).unwrap();

    let mut reloaded = load_student();
    reloaded.load_adapter(dir.path()).unwrap();
    let ids = ids_of(&expected()["cases"][0]["ids"]);
    let a = student.model().logits(&ids).unwrap();
    let b = reloaded.model().logits(&ids).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert_eq!(reloaded.adapter_config(), student.adapter_config());
}

#[test]
fn saved_adapter_uses_peft_tensor_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut student = load_student();
    let mut config = all_targets(2, 4.0);
    config.target_modules = vec!["q_proj".into(), "down_proj".into()];
    student.init_adapter(&config, 1).unwrap();
    student.save_adapter(dir.path()).unwrap();

    let saved =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    let mut names: Vec<&String> = saved.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
            "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
            "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
        ]
    );
    let a = &saved["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"];
    assert_eq!(a.dims(), [2, 176]);
}

#[test]
fn fresh_adapter_init_follows_peft() {
    // A uniform within ±1/sqrt(in_features), B zero.
    let mut student = load_student();
    student.init_adapter(&all_targets(4, 8.0), 3).unwrap();
    let vars = adapter::trainable_vars(student.model());
    let (_, a) = vars
        .iter()
        .find(|(n, _)| n.ends_with("layers.0.mlp.down_proj.lora_A"))
        .unwrap();
    let (_, b) = vars
        .iter()
        .find(|(n, _)| n.ends_with("layers.0.mlp.down_proj.lora_B"))
        .unwrap();
    let bound = 1.0 / (176f32).sqrt();
    let a_max = a
        .as_tensor()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let b_max = b
        .as_tensor()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        a_max <= bound && a_max > bound / 2.0,
        "max |A| {a_max}, bound {bound}"
    );
    assert_eq!(b_max, 0.0);
}

#[test]
fn same_seed_gives_same_adapter() {
    let mut first = load_student();
    let mut second = load_student();
    first.init_adapter(&all_targets(4, 8.0), 11).unwrap();
    second.init_adapter(&all_targets(4, 8.0), 11).unwrap();
    let a = adapter::trainable_vars(first.model());
    let b = adapter::trainable_vars(second.model());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(max_abs_diff(x.as_tensor(), y.as_tensor()), 0.0, "{name}");
    }
}

#[test]
fn every_trainable_tensor_gets_a_gradient() {
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    let named = adapter::trainable_vars(student.model());
    assert_eq!(named.len(), 2 * 7 * 2);
    let vars: Vec<_> = named.iter().map(|(_, v)| v.clone()).collect();
    let (sum, count) = loss_sum(
        student.model(),
        &[sft_sequence()],
        Pass::Autograd { dropout: None },
    )
    .unwrap();
    let loss = (sum / count as f64).unwrap();
    let grads = gradients(&loss, &vars).unwrap();
    for ((name, _), grad) in named.iter().zip(&grads) {
        let norm = grad
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "{name} got no gradient");
    }
}

#[test]
fn adamw_step_matches_reference() {
    let reference = &expected()["adamw_step"];
    let mut student = load_student();
    student.load_adapter(&fixture_adapter()).unwrap();
    let vars: Vec<_> = adapter::trainable_vars(student.model())
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let sequence = sft_sequence();

    let (sum, count) = loss_sum(
        student.model(),
        std::slice::from_ref(&sequence),
        Pass::Autograd { dropout: None },
    )
    .unwrap();
    let loss = (sum / count as f64).unwrap();
    let loss_before = loss.to_scalar::<f32>().unwrap() as f64;
    let grads = gradients(&loss, &vars).unwrap();
    let norm = global_norm(&grads).unwrap();
    let mut optimizer = AdamW::new(vars, 0.0).unwrap();
    optimizer
        .step(&grads, reference["lr"].as_f64().unwrap())
        .unwrap();
    let loss_after = mean_loss(student.model(), &[sequence]).unwrap();

    let expect = |key: &str| reference[key].as_f64().unwrap();
    assert!(
        (loss_before - expect("loss_before")).abs() < 1e-4,
        "loss before {loss_before}"
    );
    assert!(
        (norm - expect("grad_global_norm")).abs() < 1e-3,
        "grad norm {norm}"
    );
    assert!(
        (loss_after - expect("loss_after_one_step")).abs() < 1e-3,
        "loss after {loss_after}"
    );
}

fn broken_adapter(edit: impl FnOnce(&std::path::Path)) -> tempfile::TempDir {
    let dir = copy_model(&fixture_adapter());
    edit(dir.path());
    dir
}

fn load_error(dir: &std::path::Path) -> String {
    let mut student = load_student();
    format!("{:#}", student.load_adapter(dir).unwrap_err())
}

#[test]
fn adapter_missing_tensor_is_named() {
    let dir = broken_adapter(|dir| {
        let path = dir.join("adapter_model.safetensors");
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        tensors.remove("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        candle_core::safetensors::save(&tensors, &path).unwrap();
    });
    let message = load_error(dir.path());
    assert!(
        message.contains("layers.1.self_attn.v_proj.lora_B.weight"),
        "{message}"
    );
    assert!(message.contains("is missing"), "{message}");
    assert!(message.contains("adapter_model.safetensors"), "{message}");
}

#[test]
fn adapter_wrong_shape_is_named() {
    let dir = broken_adapter(|dir| {
        let path = dir.join("adapter_model.safetensors");
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let name = "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight".to_string();
        tensors.insert(
            name,
            Tensor::zeros((4, 63), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
        candle_core::safetensors::save(&tensors, &path).unwrap();
    });
    let message = load_error(dir.path());
    assert!(
        message.contains("layers.0.mlp.up_proj.lora_A.weight"),
        "{message}"
    );
    assert!(message.contains("[4, 63]"), "{message}");
}

#[test]
fn adapter_unsupported_option_is_named() {
    let dir = broken_adapter(|dir| {
        let path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"use_dora\": false", "\"use_dora\": true"),
        )
        .unwrap();
    });
    let message = load_error(dir.path());
    assert!(message.contains("use_dora"), "{message}");
    assert!(message.contains("adapter_config.json"), "{message}");
}

#[test]
fn unknown_target_module_is_rejected() {
    let mut student = load_student();
    let mut config = all_targets(4, 8.0);
    config.target_modules.push("lm_head".into());
    let message = format!("{:#}", student.init_adapter(&config, 0).unwrap_err());
    assert!(message.contains("lm_head"), "{message}");
}
