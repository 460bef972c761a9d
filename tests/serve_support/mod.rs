//! Shared helpers for the serve tests: paths into the tiny fixture and an
//! `llm2llm serve` child process on a free loopback port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;

/// Returns the path of `name` inside `tests/fixtures/tiny-llama`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny-llama")
        .join(name)
}

/// A running `llm2llm serve`; killed when dropped if the test did not stop it.
pub struct ServeProcess {
    pub child: Child,
    pub base_url: String,
    stderr: tempfile::NamedTempFile,
}

impl ServeProcess {
    /// Starts the server on a free loopback port and waits for the base URL
    /// it prints as its first stdout line.
    pub fn start(extra_args: &[&str]) -> Self {
        Self::start_model(&fixture("model"), extra_args)
    }

    pub fn start_model(model_dir: &Path, extra_args: &[&str]) -> Self {
        let stderr = tempfile::NamedTempFile::new().expect("a temp file for the server's log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm2llm"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--model"])
            .arg(model_dir)
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("the log file reopens"))
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = Self {
            child,
            base_url: String::new(),
            stderr,
        };
        server.base_url = server.read_base_url(stdout);
        server
    }

    fn read_base_url(&mut self, stdout: ChildStdout) -> String {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.starts_with("http://127.0.0.1:") => line.trim_end().to_string(),
            Ok(line) => panic!(
                "unexpected first stdout line {line:?}; log:\n{}",
                self.log()
            ),
            Err(_) => panic!("no address on stdout within 120 s; log:\n{}", self.log()),
        }
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = self
            .stderr
            .reopen()
            .and_then(|mut file| file.read_to_string(&mut text));
        text
    }

    pub fn client(&self) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&self.base_url)
                .with_api_key("unused"),
        )
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
