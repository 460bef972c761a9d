//! llm2llm: targeted, iterative data augmentation for fine-tuning a student
//! LLM from a small seed set (LLM2LLM, Lee et al., 2024).
//!
//! Folders by concept: `student` (LLaMA + LoRA engine in candle), `teacher`
//! (OpenAI-compatible client, prompts, parsing, validation, journal),
//! `serve` (an OpenAI-compatible server over the student), `data` (datasets
//! and answer scoring), `store` (SQLite records), `driver` (the LLM2LLM loop
//! and resume), `baseline` (plain fine-tuning, EDA, AugGPT) and `report`
//! (tables, charts and comparisons of recorded runs).

pub mod baseline;
pub mod cli;
pub mod data;
pub mod driver;
pub mod report;
pub mod serve;
pub mod store;
pub mod student;
pub mod teacher;
