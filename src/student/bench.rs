//! `llm2llm bench`: training and generation throughput and peak memory.

/// Command-line arguments of `llm2llm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `llm2llm bench`.
pub async fn bench(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm bench` is not implemented yet")
}
