//! Entry point of `llm2llm compare`: several runs side by side.

/// Command-line arguments of `llm2llm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

/// Runs `llm2llm compare`.
pub async fn compare(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm compare` is not implemented yet")
}
