//! `llm2llm serve`: an OpenAI-compatible chat server over the student engine.

/// Command-line arguments of `llm2llm serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `llm2llm serve`.
pub async fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm serve` is not implemented yet")
}
