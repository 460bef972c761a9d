//! Baselines run through the same pipeline: plain fine-tuning, EDA, AugGPT.
//!
//! A baseline builds its training set once, from the seed set and (for EDA
//! and AugGPT) examples generated from every seed example, then trains and
//! evaluates the student like one LLM2LLM iteration.

pub mod cli;
pub mod eda;
pub mod wordnet;

/// Splits `total` generated examples over `seeds` seed examples as evenly as
/// possible: each gets `total / seeds`, and the first `total % seeds` get one
/// more, so the counts add up to `total` exactly. Used to match another
/// run's number of generated examples.
pub fn split_evenly(total: usize, seeds: usize) -> Vec<usize> {
    if seeds == 0 {
        return Vec::new();
    }
    let (base, extra) = (total / seeds, total % seeds);
    (0..seeds).map(|i| base + usize::from(i < extra)).collect()
}
