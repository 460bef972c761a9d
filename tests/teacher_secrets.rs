//! The API key reaches the server but never the logs, the run database or
//! an error message, even when the server echoes it back. This file holds a
//! single test because it sets an environment variable, which is only sound
//! while no other thread runs.

mod teacher_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use llm2llm::teacher::{Purpose, Teacher};
use teacher_support::*;

const KEY_ENV: &str = "LLM2LLM_TEST_TEACHER_KEY";
const FAKE_KEY: &str = "sk-fake-3b9c41d2e8f7a6051c4d";

#[derive(Clone)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn echo_authorization(request: &SeenRequest) -> String {
    format!("request carried {}", request.authorization.clone().unwrap_or_default())
}

#[test]
fn api_key_stays_out_of_logs_database_and_errors() {
    // SAFETY: this is the only test in this binary and no runtime or other
    // thread exists yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var(KEY_ENV, FAKE_KEY) };
    let logs = CapturedLogs(Arc::new(Mutex::new(Vec::new())));
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    runtime.block_on(async {
        // Seed 0 succeeds; seed 1 gets server errors that echo the
        // Authorization header; the second batch gets a 401 that echoes it.
        let server = ScriptedServer::start(|request, _| {
            let message = request.user_message();
            if message.contains("Seed question number 0") {
                completion(&two_good_items("Ola"), "stop")
            } else if message.contains("Seed question number 1") {
                Reply::Raw {
                    status: 500,
                    headers: Vec::new(),
                    body: echo_authorization(request),
                }
            } else {
                api_error(401, &echo_authorization(request))
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let pool = open_db(dir.path()).await;
        let (run_id, seeds) = seed_run(&pool, "secrets", 3).await;
        let mut config = test_config(&server.base_url(), KEY_ENV);
        config.max_attempts = 2;
        let teacher = Teacher::new(config, pool.clone()).unwrap().with_backoff(fast_backoff()).unwrap();
        let requests = requests_for(&pool, &seeds).await;

        let outcomes = teacher
            .augment(run_id, 0, Purpose::Llm2llm, requests[..2].to_vec())
            .await
            .unwrap();
        let fatal = teacher
            .augment(run_id, 0, Purpose::Llm2llm, requests[2..].to_vec())
            .await
            .unwrap_err();

        let seen = server.seen();
        assert!(
            seen.iter()
                .all(|request| request.authorization.as_deref() == Some(&format!("Bearer {FAKE_KEY}"))),
            "the key was not sent, so this test proves nothing"
        );

        let call_error = outcomes[1].error.clone().unwrap_or_default();
        assert!(call_error.contains("[redacted]"), "{call_error}");
        assert!(!call_error.contains(FAKE_KEY), "{call_error}");
        let fatal_text = format!("{fatal} {fatal:?}");
        assert!(fatal_text.contains("HTTP 401"), "{fatal_text}");
        assert!(!fatal_text.contains(FAKE_KEY), "{fatal_text}");

        pool.close().await;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(FAKE_KEY.len()).any(|window| window == FAKE_KEY.as_bytes());
            assert!(!found, "the key is stored in {}", path.display());
        }
    });
    drop(runtime);

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("retrying"), "no teacher logs were captured");
    let leaking: Vec<&str> = logs.lines().filter(|line| line.contains(FAKE_KEY)).collect();
    assert!(leaking.is_empty(), "the key is in the logs: {leaking:#?}");
}
