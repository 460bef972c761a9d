//! Entry point of `llm2llm sample`.

/// Command-line arguments of `llm2llm sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {}

/// Runs `llm2llm sample`.
pub async fn sample(_args: SampleArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm sample` is not implemented yet")
}
