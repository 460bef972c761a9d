//! The LLM2LLM loop (Lee et al., 2024): per iteration n, fine-tune the
//! student on D_n, evaluate it on the seed (and test) set, and send each
//! missed seed example to the teacher, so that D_{n+1} is the seed set plus
//! every example generated in iterations 0..=n.
//!
//! Each phase is one row of `phases`. Its results and its 'done' row are
//! committed in one transaction, after the artifacts it writes (adapter,
//! training set) are in place. A resume therefore starts at the first phase
//! that is not 'done' and redoes it from scratch. Datasets
//! and command-line handling live in `cli`; the database in `crate::store`.

pub mod cli;
pub mod config;
pub mod dataset;
pub mod hook;

mod augment;
mod evaluate;
mod train;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::SqlitePool;

use crate::store::{self, ExampleKind, Phase, RunRow};
use crate::student::Student;
use crate::teacher::Teacher;
use config::RunConfig;
use hook::AbortPoint;

/// Outcome of a call of [`execute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every iteration ran.
    Completed,
    /// The student missed no seed example at this iteration, so there was
    /// nothing to augment.
    NoMisses { iteration: i64 },
}

/// A run being executed: its record, settings and loaded components.
struct Driver {
    pool: SqlitePool,
    run: RunRow,
    config: RunConfig,
    /// `<database folder>/<run id>/`: adapters and training sets.
    run_dir: PathBuf,
    abort: AbortPoint,
    /// Loaded on first use, so a resume that only augments loads no model.
    student: Option<Student>,
    /// The iteration whose adapter the loaded student holds.
    adapter_iteration: Option<i64>,
    teacher: Option<Teacher>,
    /// When the current phase attempt started.
    phase_started: Instant,
}

/// Folder of a run's artifacts next to the database at `db_path`.
pub fn run_dir(db_path: &Path, run_id: i64) -> PathBuf {
    db_path.parent().unwrap_or(Path::new("")).join(run_id.to_string())
}

/// Folder of iteration `iteration`'s artifacts.
pub fn iteration_dir(run_dir: &Path, iteration: i64) -> PathBuf {
    run_dir.join(format!("iter-{iteration}"))
}

/// Runs (or continues) the loop of a recorded run from its first phase
/// that is not 'done', and marks the run finished or failed.
pub async fn execute(pool: SqlitePool, run: RunRow, config: RunConfig, db_path: &Path) -> anyhow::Result<Finish> {
    let run_id = run.id;
    let mut driver = Driver {
        run_dir: run_dir(db_path, run.id),
        pool,
        run,
        config,
        abort: AbortPoint::from_env(),
        student: None,
        adapter_iteration: None,
        teacher: None,
        phase_started: Instant::now(),
    };
    let result = driver.iterate().await;

    let (status, reason) = match &result {
        Ok(Finish::Completed) => ("finished", None),
        Ok(Finish::NoMisses { iteration }) => {
            ("finished", Some(format!("the student answered every seed example correctly in iteration {iteration}")))
        }
        Err(err) => ("failed", Some(format!("{err:#}"))),
    };
    store::set_run_status(&driver.pool, run_id, status, reason.as_deref())
        .await
        .with_context(|| format!("failed to mark run {run_id} as {status}"))?;
    result
}

impl Driver {
    async fn iterate(&mut self) -> anyhow::Result<Finish> {
        let iterations = self.config.run.iterations as i64;
        let has_test = self.run.test_path.is_some();
        for iteration in 0..iterations {
            tracing::info!(run = %self.run.name, iteration, "iteration {} of {iterations}", iteration + 1);
            if !self.is_done(iteration, Phase::Train).await? {
                self.timed(iteration, Phase::Train, Self::train).await?;
            }
            if !self.is_done(iteration, Phase::EvalSeed).await? {
                self.timed(iteration, Phase::EvalSeed, async |driver: &mut Self, n| driver.evaluate(n, ExampleKind::Seed).await).await?;
            }
            if has_test && !self.is_done(iteration, Phase::EvalTest).await? {
                self.timed(iteration, Phase::EvalTest, async |driver: &mut Self, n| driver.evaluate(n, ExampleKind::Test).await).await?;
            }
            if iteration + 1 == iterations {
                break;
            }
            let misses = store::seed_misses(&self.pool, self.run.id, iteration)
                .await
                .context("failed to read the seed misses")?;
            if misses.is_empty() {
                tracing::info!(iteration, "the student missed no seed example; stopping early");
                return Ok(Finish::NoMisses { iteration });
            }
            if !self.is_done(iteration, Phase::Augment).await? {
                self.timed(iteration, Phase::Augment, Self::augment).await?;
            }
        }
        Ok(Finish::Completed)
    }

    async fn is_done(&self, iteration: i64, phase: Phase) -> anyhow::Result<bool> {
        let row = store::phase(&self.pool, self.run.id, iteration, phase)
            .await
            .with_context(|| format!("failed to read phase {phase} of iteration {iteration}"))?;
        let done = row.is_some_and(|row| row.status == "done");
        if done {
            tracing::debug!(iteration, %phase, "phase already done; skipping");
        }
        Ok(done)
    }

    /// Marks the phase running, runs it, and on failure marks it failed with
    /// the time spent. `body` commits the phase's 'done' row itself, in the
    /// same transaction as its results.
    async fn timed<F>(&mut self, iteration: i64, phase: Phase, body: F) -> anyhow::Result<()>
    where
        F: AsyncFnOnce(&mut Self, i64) -> anyhow::Result<()>,
    {
        store::start_phase(&self.pool, self.run.id, iteration, phase)
            .await
            .with_context(|| format!("failed to record the start of {phase} in iteration {iteration}"))?;
        // NOTE: an attempt killed by a signal records no time, so `seconds`
        // sums only the attempts that finished or failed with an error.
        let started = Instant::now();
        self.phase_started = started;
        let result = body(self, iteration).await;
        if let Err(err) = &result {
            tracing::error!(iteration, %phase, "phase failed: {err:#}");
            let seconds = started.elapsed().as_secs_f64();
            if let Err(db_err) = store::fail_phase(&self.pool, self.run.id, iteration, phase, seconds).await {
                tracing::error!(iteration, %phase, "failed to record the failure: {db_err}");
            }
        }
        result.with_context(|| format!("{phase} of iteration {iteration} failed"))
    }

    /// Loads the student on first use, in a blocking thread because loading
    /// reads and converts the whole checkpoint.
    async fn take_student(&mut self) -> anyhow::Result<Student> {
        if let Some(student) = self.student.take() {
            return Ok(student);
        }
        let dir = self.config.model.dir.clone();
        let options = self.config.load_options();
        tracing::info!(model = %dir.display(), "loading the student");
        tokio::task::spawn_blocking(move || Student::load(&dir, &options))
            .await
            .context("the model loading task panicked")?
            .with_context(|| format!("failed to load the student from {}", self.config.model.dir.display()))
    }

    /// Returns the student holding iteration `iteration`'s trained adapter,
    /// loading it from the run folder when another one is in memory.
    async fn take_trained_student(&mut self, iteration: i64) -> anyhow::Result<Student> {
        let mut student = self.take_student().await?;
        if self.adapter_iteration != Some(iteration) {
            let adapter = iteration_dir(&self.run_dir, iteration).join("adapter");
            tracing::info!(adapter = %adapter.display(), "loading the adapter trained in iteration {iteration}");
            let (returned, loaded) = tokio::task::spawn_blocking(move || {
                let loaded = student.load_adapter(&adapter).with_context(|| {
                    format!("failed to load the adapter {}", adapter.display())
                });
                (student, loaded)
            })
            .await
            .context("the adapter loading task panicked")?;
            student = returned;
            loaded?;
            self.adapter_iteration = Some(iteration);
        }
        Ok(student)
    }

    /// Seconds since the current phase attempt started.
    fn phase_seconds(&self) -> f64 {
        self.phase_started.elapsed().as_secs_f64()
    }

    fn teacher(&mut self) -> anyhow::Result<&Teacher> {
        if self.teacher.is_none() {
            let teacher = Teacher::new(self.config.teacher_config(), self.pool.clone())
                .context("failed to set up the teacher client")?;
            self.teacher = Some(teacher);
        }
        Ok(self.teacher.as_ref().expect("the teacher was set just above"))
    }
}

/// Creates a progress bar on stderr, which indicatif hides when stderr is not a terminal.
fn progress_bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.into());
    bar
}
