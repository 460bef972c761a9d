//! Measurements on real GSM8K text, ignored by default because they need
//! the dataset and print timings. Run with
//! `LLM2LLM_GSM8K_DIR=<folder with train.jsonl and test.jsonl> cargo test
//! --test teacher_rouge_bench -- --ignored --nocapture`.

use std::path::PathBuf;
use std::time::Instant;

use llm2llm::teacher::parse::parse_math_reply;
use llm2llm::teacher::validate::rouge_l_f1;
use llm2llm::teacher::{RejectReason, Validator};

const DIR_ENV: &str = "LLM2LLM_GSM8K_DIR";

fn read_examples(file: &str) -> Vec<(String, String)> {
    let dir = std::env::var(DIR_ENV)
        .unwrap_or_else(|_| panic!("set {DIR_ENV} to a folder with GSM8K train.jsonl and test.jsonl"));
    let path = PathBuf::from(dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                value["question"].as_str().unwrap().to_owned(),
                value["answer"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Rewrites every number in `text` as `number * factor + offset`, keeping
/// the words, as a teacher's close variant would.
fn shift_numbers(text: &str, factor: u64, offset: u64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            let value: u64 = digits.parse().unwrap_or(0);
            out.push_str(&(value * factor + offset).to_string());
            digits.clear();
        }
        out.push(c);
    }
    out.pop();
    out
}

#[test]
#[ignore = "needs GSM8K; prints timings"]
fn rouge_check_10k_new_against_10k_existing() {
    let mut pool: Vec<String> = read_examples("train.jsonl").into_iter().map(|(q, _)| q).collect();
    pool.extend(read_examples("test.jsonl").into_iter().map(|(q, _)| q));
    let size = 10_000;
    let existing: Vec<String> = (0..size)
        .map(|i| {
            let question = &pool[i % pool.len()];
            if i < pool.len() { question.clone() } else { shift_numbers(question, 1, 1) }
        })
        .collect();
    // New questions: every question again with other numbers, and beyond the
    // pool size also without their first word, so many pairs fall in the
    // same length window and need a full LCS.
    let new: Vec<String> = (0..size)
        .map(|i| {
            let shifted = shift_numbers(&pool[i % pool.len()], 3, 0);
            if i < pool.len() {
                shifted
            } else {
                shifted.split_once(' ').map(|(_, rest)| rest.to_owned()).unwrap_or(shifted)
            }
        })
        .collect();

    let started = Instant::now();
    let mut validator = Validator::new(0.95, &existing);
    let built = started.elapsed();
    let results = validator.admit_all(&new);
    let total = started.elapsed();
    let near = results.iter().filter(|result| **result == Err(RejectReason::NearCopy)).count();
    println!(
        "admit_all: {size} new vs {} existing: build {:.3} s, total {:.3} s, {near} near copies, {} admitted",
        existing.len(),
        built.as_secs_f64(),
        total.as_secs_f64(),
        size - near
    );

    let started = Instant::now();
    let mut one_by_one = Validator::new(0.95, &existing);
    let sequential: Vec<_> = new.iter().map(|question| one_by_one.admit(question)).collect();
    println!("admit one by one: {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(sequential, results);

    // Cost of the unpruned check, estimated from a sample of pairs.
    let sample = 200;
    let started = Instant::now();
    let mut checksum = 0.0;
    for a in new.iter().take(sample) {
        for b in existing.iter().take(sample) {
            checksum += rouge_l_f1(a, b);
        }
    }
    let per_pair = started.elapsed().as_secs_f64() / (sample * sample) as f64;
    println!(
        "all pairs with rouge_l_f1 (tokenising each time), extrapolated: {:.0} s for {} pairs (checksum {checksum:.1})",
        per_pair * (size * size) as f64,
        size * size
    );
}

#[test]
#[ignore = "needs GSM8K; prints counts"]
fn gsm8k_reference_solutions_pass_the_checks() {
    let examples = read_examples("train.jsonl");
    let mut rejected: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (question, answer) in &examples {
        let reply = format!("Question 1: {question}\nSolution 1:\n{answer}\n");
        let parsed = parse_math_reply(&reply, Some("stop"));
        for (reason, text) in parsed.rejected {
            rejected.entry(reason.as_str().to_owned()).or_default().push(text);
        }
    }
    let total_rejected: usize = rejected.values().map(Vec::len).sum();
    println!("{} of {} GSM8K train examples rejected", total_rejected, examples.len());
    for (reason, texts) in &rejected {
        println!("{reason}: {}", texts.len());
        for text in texts.iter().take(3) {
            println!("  e.g. {}", text.replace('\n', " | "));
        }
    }
    // The reference data has a few genuinely wrong annotations, so this
    // allows a small share rather than zero.
    assert!(total_rejected * 100 < examples.len(), "{total_rejected} rejected");
}
