//! Supervised fine-tuning of a LoRA adapter on the tiny-llama fixture.

mod student_support;

use llm2llm::student::train::{epoch_orders, scheduled_lr};
use llm2llm::student::{GenerateConfig, LoraConfig, SftExample, StepMetrics, TrainConfig};
use student_support::*;

fn examples() -> Vec<SftExample> {
    [
        (
            "Question: Ana has 2 apples and gets 3 more. How many apples does Ana have?\nAnswer:",
            " Ana has 2 + 3 = 5 apples.\n#### 5",
        ),
        (
            "Question: Bo had 9 coins and gave away 4. How many are left?\nAnswer:",
            " Bo has 9 - 4 = 5 coins left.\n#### 5",
        ),
        (
            "Question: Chen has 6 books and gets 1 more. How many books does Chen have?\nAnswer:",
            " Chen has 6 + 1 = 7 books.\n#### 7",
        ),
        (
            "Question: Dara had 8 shells and gave away 2. How many are left?\nAnswer:",
            " Dara has 8 - 2 = 6 shells left.\n#### 6",
        ),
    ]
    .into_iter()
    .map(|(p, c)| SftExample {
        prompt: p.into(),
        completion: c.into(),
    })
    .collect()
}

fn lora() -> LoraConfig {
    LoraConfig {
        r: 4,
        lora_alpha: 16.0,
        lora_dropout: 0.05,
        target_modules: ["q_proj", "v_proj", "up_proj", "down_proj"]
            .map(String::from)
            .to_vec(),
    }
}

fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        micro_batch_size: 2,
        gradient_accumulation: 2,
        learning_rate: 1e-2,
        weight_decay: 0.01,
        warmup_ratio: 0.1,
        max_grad_norm: 1.0,
        max_seq_len: 64,
        seed: 5,
    }
}

#[test]
fn loss_falls_and_adapter_reloads() {
    let mut student = load_student();
    student.init_adapter(&lora(), 1).unwrap();
    let mut seen = 0;
    let metrics = student
        .train(&examples(), &train_config(30), &mut |_: &StepMetrics| {
            seen += 1
        })
        .unwrap();

    // 4 examples, micro-batches of 2, 2 per step: one step per epoch.
    assert_eq!(metrics.len(), 30);
    assert_eq!(seen, 30);
    let first = metrics[0].loss;
    let last = metrics.last().unwrap().loss;
    assert!(last < first * 0.5, "loss went from {first} to {last}");

    let dir = tempfile::tempdir().unwrap();
    student.save_adapter(dir.path()).unwrap();
    let mut reloaded = load_student();
    reloaded.load_adapter(dir.path()).unwrap();
    let prompts: Vec<String> = examples().into_iter().map(|e| e.prompt).collect();
    let config = GenerateConfig {
        max_new_tokens: 16,
        stop: vec!["\n".into()],
        batch_size: 4,
    };
    let trained = student.generate(&prompts, &config).unwrap();
    let again = reloaded.generate(&prompts, &config).unwrap();
    assert_eq!(trained, again);
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let run = || {
        let mut student = load_student();
        student.init_adapter(&lora(), 1).unwrap();
        student
            .train(&examples(), &train_config(3), &mut |_| {})
            .unwrap()
    };
    let losses = |m: Vec<StepMetrics>| m.into_iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(run()), losses(run()));
}

#[test]
fn step_metrics_count_target_tokens() {
    let mut student = load_student();
    student.init_adapter(&lora(), 1).unwrap();
    let mut config = train_config(1);
    config.gradient_accumulation = 1;
    config.micro_batch_size = 4;
    let metrics = student.train(&examples(), &config, &mut |_| {}).unwrap();
    let expected: usize = examples()
        .iter()
        .map(|e| {
            let s = student.sft_sequence(e, 64).unwrap();
            s.ids.len() - s.prompt_len
        })
        .sum();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].tokens, expected);
}

#[test]
fn training_without_adapter_fails() {
    let mut student = load_student();
    let err = student
        .train(&examples(), &train_config(1), &mut |_| {})
        .unwrap_err();
    assert!(format!("{err:#}").contains("init_adapter"), "{err:#}");
}

#[test]
fn zero_epochs_is_rejected() {
    let mut student = load_student();
    student.init_adapter(&lora(), 1).unwrap();
    let err = student
        .train(&examples(), &train_config(0), &mut |_| {})
        .unwrap_err();
    assert!(format!("{err:#}").contains("epochs"), "{err:#}");
}

#[test]
fn truncated_completions_leave_no_targets() {
    let mut student = load_student();
    student.init_adapter(&lora(), 1).unwrap();
    let mut config = train_config(1);
    config.max_seq_len = 8;
    let err = student
        .train(&examples(), &config, &mut |_| {})
        .unwrap_err();
    assert!(format!("{err:#}").contains("max_seq_len 8"), "{err:#}");
}

#[test]
fn schedule_warms_up_then_decays() {
    assert_eq!(scheduled_lr(1.0, 0, 10, 2), 0.0);
    assert_eq!(scheduled_lr(1.0, 1, 10, 2), 0.5);
    assert_eq!(scheduled_lr(1.0, 2, 10, 2), 1.0);
    assert!((scheduled_lr(1.0, 6, 10, 2) - 0.5).abs() < 1e-12);
    assert!(scheduled_lr(1.0, 9, 10, 2) < 0.05);
}

#[test]
fn shuffle_depends_only_on_seed() {
    assert_eq!(epoch_orders(10, 3, 4), epoch_orders(10, 3, 4));
    assert_ne!(epoch_orders(10, 3, 4), epoch_orders(10, 3, 5));
    let mut first = epoch_orders(10, 1, 4).remove(0);
    first.sort_unstable();
    assert_eq!(first, (0..10).collect::<Vec<_>>());
}
