//! Command-line interface: clap definitions, logging set-up and dispatch.
//!
//! Each subcommand's arguments and entry point live in the module that owns
//! the concept; this file only wires them together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::{baseline, data, driver, report, serve, student};

/// Targeted, iterative data augmentation for fine-tuning LLMs (LLM2LLM).
#[derive(Debug, Parser)]
#[command(name = "llm2llm", version, about)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Only warnings and errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the LLM2LLM loop: fine-tune, evaluate, augment the misses, repeat.
    Run(driver::cli::RunArgs),
    /// Continue an interrupted run from its first unfinished phase.
    Resume(driver::cli::ResumeArgs),
    /// Run a baseline (plain fine-tuning, EDA or AugGPT) through the same pipeline.
    Baseline(baseline::cli::BaselineArgs),
    /// List the runs recorded in a database.
    List(report::cli::ListArgs),
    /// Show one run's configuration and status.
    Show(report::cli::ShowArgs),
    /// Report a run per iteration as a table and an accuracy chart.
    Report(report::cli::ReportArgs),
    /// Compare several runs side by side.
    Compare(report::compare::CompareArgs),
    /// Write an iteration's training set, with provenance, as jsonl.
    Export(report::cli::ExportArgs),
    /// Draw a reproducible random subset of a dataset (a seed set).
    Sample(data::cli::SampleArgs),
    /// Serve a checkpoint as an OpenAI-compatible chat API.
    Serve(serve::ServeArgs),
    /// Measure training and generation throughput and peak memory.
    Bench(student::bench::BenchArgs),
}

/// Parses arguments, sets up logging and runs the subcommand. Exit codes:
/// 0 success, 1 failure, 2 usage error (from clap).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => driver::cli::run(args).await,
        Command::Resume(args) => driver::cli::resume(args).await,
        Command::Baseline(args) => baseline::cli::baseline(args).await,
        Command::List(args) => report::cli::list(args).await,
        Command::Show(args) => report::cli::show(args).await,
        Command::Report(args) => report::cli::report(args).await,
        Command::Compare(args) => report::compare::compare(args).await,
        Command::Export(args) => report::cli::export(args).await,
        Command::Sample(args) => data::cli::sample(args).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Bench(args) => student::bench::bench(args).await,
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "llm2llm=warn",
        (false, 0) => "llm2llm=info",
        (false, 1) => "llm2llm=debug",
        (false, _) => "llm2llm=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Logs go to stderr so stdout carries only results (tables, JSON).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
