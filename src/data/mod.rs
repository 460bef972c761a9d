//! Datasets (GSM8K jsonl), their validation, seed sampling and answer scoring.

pub mod cli;
