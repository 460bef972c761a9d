//! Entry points of `llm2llm run` and `llm2llm resume`.

/// Command-line arguments of `llm2llm run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `llm2llm run`.
pub async fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm run` is not implemented yet")
}

/// Command-line arguments of `llm2llm resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {}

/// Runs `llm2llm resume`.
pub async fn resume(_args: ResumeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm resume` is not implemented yet")
}
