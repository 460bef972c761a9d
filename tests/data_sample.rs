//! Reproducible seed sampling: the library functions and `llm2llm sample`.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use llm2llm::data::sample::{count_for_fraction, sample_indices};

#[test]
fn one_percent_of_gsm8k_train_is_74() {
    assert_eq!(count_for_fraction(7473, 0.01), 74);
}

#[test]
fn fraction_count_survives_float_error() {
    // 0.29 * 100 is 28.999999999999996 in f64.
    assert_eq!(count_for_fraction(100, 0.29), 29);
}

#[test]
fn same_seed_gives_same_indices() {
    assert_eq!(sample_indices(7473, 74, 1), sample_indices(7473, 74, 1));
}

#[test]
fn different_seeds_give_different_indices() {
    assert_ne!(sample_indices(7473, 74, 1), sample_indices(7473, 74, 2));
}

#[test]
fn indices_are_sorted_distinct_and_in_range() {
    let indices = sample_indices(500, 120, 9);
    assert_eq!(indices.len(), 120);
    assert!(
        indices.windows(2).all(|pair| pair[0] < pair[1]),
        "{indices:?}"
    );
    assert!(indices.iter().all(|&index| index < 500));
}

#[test]
fn indices_are_pinned_across_versions() {
    // Pinned output of ChaCha8 with seed 1: a change here changes every
    // seed subset users have drawn, so it must be deliberate.
    assert_eq!(
        sample_indices(100, 8, 1),
        vec![7, 11, 16, 26, 44, 56, 60, 80]
    );
}

#[test]
fn every_index_is_equally_likely() {
    let mut hits = [0usize; 4];
    for seed in 0..4000 {
        for index in sample_indices(4, 1, seed) {
            hits[index] += 1;
        }
    }
    // 1000 expected per index; the standard deviation is about 27.
    for (index, &count) in hits.iter().enumerate() {
        assert!(
            (880..=1120).contains(&count),
            "index {index} drawn {count} times: {hits:?}"
        );
    }
}

fn write_dataset(dir: &Path, count: usize) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!(
            "{{\"question\": \"Sam has {i} marbles and finds 2 more. How many now?\", \"answer\": \"{i} + 2 = {}\\n#### {}\"}}\n",
            i + 2,
            i + 2
        ));
    }
    let path = dir.join("train.jsonl");
    std::fs::write(&path, text).expect("the dataset can be written");
    path
}

fn run_sample(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llm2llm"))
        .arg("sample")
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn sample_command_is_reproducible() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 300);
    let input = input.to_str().expect("temp paths are UTF-8");
    let first = dir.path().join("a.jsonl");
    let second = dir.path().join("b.jsonl");
    for out in [&first, &second] {
        let output = run_sample(&[
            "--from",
            input,
            "--fraction",
            "0.05",
            "--seed",
            "3",
            "--out",
            out.to_str().expect("UTF-8"),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let first = std::fs::read_to_string(&first).expect("the sample was written");
    let second = std::fs::read_to_string(&second).expect("the sample was written");
    assert_eq!(first, second);
    assert_eq!(first.lines().count(), 15);
}

#[test]
fn sample_lines_come_from_input_in_order() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 50);
    let output = run_sample(&[
        "--from",
        input.to_str().expect("UTF-8"),
        "--count",
        "7",
        "--seed",
        "11",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let source: Vec<serde_json::Value> = std::fs::read_to_string(&input)
        .expect("the dataset exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("input lines are JSON"))
        .collect();
    let sampled: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .expect("output is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("output lines are JSON"))
        .collect();
    assert_eq!(sampled.len(), 7);
    let positions: Vec<usize> = sampled
        .iter()
        .map(|line| {
            source
                .iter()
                .position(|s| s == line)
                .expect("each sampled line is an input line")
        })
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{positions:?}"
    );
    assert_eq!(positions.iter().collect::<HashSet<_>>().len(), 7);
}

#[test]
fn sample_rejects_empty_result() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 50);
    let output = run_sample(&[
        "--from",
        input.to_str().expect("UTF-8"),
        "--fraction",
        "0.01",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rounds down to 0"), "{stderr}");
}

#[test]
fn sample_rejects_zero_count() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 5);
    let output = run_sample(&["--from", input.to_str().expect("UTF-8"), "--count", "0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--count 0 gives an empty sample"),
        "{stderr}"
    );
}

#[test]
fn sample_rejects_count_above_total() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 5);
    let output = run_sample(&["--from", input.to_str().expect("UTF-8"), "--count", "6"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--count 6 exceeds the 5 valid examples"),
        "{stderr}"
    );
}

#[test]
fn sample_rejects_fraction_above_one() {
    let dir = tempfile::tempdir().expect("a temp dir can be created");
    let input = write_dataset(dir.path(), 5);
    let output = run_sample(&[
        "--from",
        input.to_str().expect("UTF-8"),
        "--fraction",
        "1.5",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--fraction 1.5 is out of range"),
        "{stderr}"
    );
}
