//! Entry point of `llm2llm sample`: a reproducible random subset of a
//! dataset, written as jsonl in file order.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Dataset;
use super::sample::{count_for_fraction, sample_indices};

/// Command-line arguments of `llm2llm sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Dataset to sample from: jsonl with `question` and `answer` strings.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// Fraction of the valid examples to keep, above 0 and at most 1. The
    /// count is rounded down: 0.01 of GSM8K's 7,473 training problems is 74.
    #[arg(long, required_unless_present = "count", conflicts_with = "count")]
    pub fraction: Option<f64>,

    /// Number of examples to keep, instead of --fraction.
    #[arg(long)]
    pub count: Option<usize>,

    /// Seed of the random selection; the same file, count and seed always
    /// give the same subset.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Output jsonl file; standard output when absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `llm2llm sample`.
pub async fn sample(args: SampleArgs) -> anyhow::Result<()> {
    if let Some(fraction) = args.fraction
        && !(fraction > 0.0 && fraction <= 1.0)
    {
        anyhow::bail!("--fraction {fraction} is out of range; give a value above 0 and at most 1");
    }
    if let Some(out) = &args.out
        && same_file(out, &args.from)
    {
        anyhow::bail!(
            "--out {} is the input file; write the sample to another file",
            out.display()
        );
    }

    let dataset = Dataset::load(&args.from)?;
    dataset.log_problems();
    let total = dataset.examples.len();

    let count = match (args.count, args.fraction) {
        (Some(count), _) => count,
        (None, Some(fraction)) => count_for_fraction(total, fraction),
        (None, None) => anyhow::bail!("give --fraction or --count"),
    };
    if count == 0 {
        match args.fraction {
            Some(fraction) => anyhow::bail!(
                "the sample would be empty ({fraction} of {total} examples rounds down to 0); raise --fraction or give --count"
            ),
            None => anyhow::bail!("--count 0 gives an empty sample; give a count of 1 or more"),
        }
    }
    if count > total {
        anyhow::bail!(
            "--count {count} exceeds the {total} valid examples of {}",
            args.from.display()
        );
    }

    let mut text = String::new();
    for index in sample_indices(total, count, args.seed) {
        let example = &dataset.examples[index];
        let line = SampledLine {
            question: &example.question,
            answer: &example.answer,
        };
        text.push_str(
            &serde_json::to_string(&line).context("failed to encode an example as JSON")?,
        );
        text.push('\n');
    }

    match &args.out {
        Some(out) => {
            if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create the folder {}", parent.display()))?;
            }
            std::fs::write(out, &text)
                .with_context(|| format!("failed to write {}", out.display()))?;
            tracing::info!(
                "wrote {count} of {total} examples of {} (seed {}) to {}",
                args.from.display(),
                args.seed,
                out.display()
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("failed to write to standard output")?;
            stdout
                .flush()
                .context("failed to write to standard output")?;
        }
    }
    Ok(())
}

/// One output line; the field order is GSM8K's.
#[derive(serde::Serialize)]
struct SampledLine<'a> {
    question: &'a str,
    answer: &'a str,
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
