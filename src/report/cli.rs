//! Entry points of `llm2llm list`, `show`, `report` and `export`.

/// Command-line arguments of `llm2llm report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

/// Runs `llm2llm report`.
pub async fn report(_args: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm report` is not implemented yet")
}

/// Command-line arguments of `llm2llm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {}

/// Runs `llm2llm list`.
pub async fn list(_args: ListArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm list` is not implemented yet")
}

/// Command-line arguments of `llm2llm show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {}

/// Runs `llm2llm show`.
pub async fn show(_args: ShowArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm show` is not implemented yet")
}

/// Command-line arguments of `llm2llm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {}

/// Runs `llm2llm export`.
pub async fn export(_args: ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`llm2llm export` is not implemented yet")
}
