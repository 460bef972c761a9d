//! Reproducible random subsets of a dataset (seed sets).
//!
//! The selection depends only on the number of examples, the count and the
//! seed. The random numbers come from ChaCha8 seeded with the seed's
//! little-endian bytes; `rand_chacha` documents its output as value-stable
//! across platforms. The shuffle and the bounded draws are written here
//! because `rand`'s own algorithms may change between versions.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Added before rounding down so that products like 0.29 × 100, which is
/// 28.999999999999996 in f64, give the intended 29.
const ROUNDING_SLACK: f64 = 1e-9;

/// Returns how many of `total` examples a fraction selects: the product
/// rounded down, as the LLM2LLM paper's 1% of GSM8K's 7,473 training
/// problems gives 74.
pub fn count_for_fraction(total: usize, fraction: f64) -> usize {
    (total as f64 * fraction + ROUNDING_SLACK).floor() as usize
}

/// Draws `count` distinct indices below `total`, in increasing order.
/// Requires `count <= total`; a larger count returns all indices.
pub fn sample_indices(total: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(seed_bytes);

    // Partial Fisher-Yates: after step i, positions 0..=i hold a uniform
    // random sample without replacement.
    let mut indices: Vec<usize> = (0..total).collect();
    let count = count.min(total);
    for i in 0..count {
        let j = i + draw_below(&mut rng, (total - i) as u64) as usize;
        indices.swap(i, j);
    }
    indices.truncate(count);
    indices.sort_unstable();
    indices
}

/// Draws uniformly from `0..bound` (`bound > 0`) by rejection: values below
/// `2^64 mod bound` are redrawn, so every remainder is equally likely.
fn draw_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let value = rng.next_u64();
        if value >= threshold {
            return value % bound;
        }
    }
}
