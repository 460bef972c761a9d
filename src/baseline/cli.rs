//! Entry point of `llm2llm baseline`.

/// Command-line arguments of `llm2llm baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {}

/// Runs `llm2llm baseline`.
pub async fn baseline(_args: BaselineArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm baseline` is not implemented yet")
}
