//! The `llm2llm` binary: parses the command line and hands off to the library.

fn main() -> std::process::ExitCode {
    llm2llm::cli::main()
}
