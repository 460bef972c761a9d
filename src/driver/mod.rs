//! The LLM2LLM loop: train, evaluate, augment the misses, repeat; with resume.

pub mod cli;
