//! Baselines run through the same pipeline: plain fine-tuning, EDA, AugGPT.

pub mod cli;
