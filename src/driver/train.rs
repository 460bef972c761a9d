//! The train phase: fine-tune a LoRA adapter on D_n, save it in PEFT format
//! with the training set next to it, and record the per-step metrics.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::{dataset, iteration_dir, progress_bar, Driver};
use crate::store::{self, ExampleRow, Phase, TrainingMetricRow};
use crate::student::{SftExample, StepMetrics, Student};

impl Driver {
    pub(super) async fn train(&mut self, iteration: i64) -> anyhow::Result<()> {
        let rows = store::training_set(&self.pool, self.run.id, iteration)
            .await
            .context("failed to read the training set")?;
        let dir = iteration_dir(&self.run_dir, iteration);
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        write_training_set(&dir.join("train.jsonl"), &rows)?;

        let generated = rows.iter().filter(|row| row.kind == "generated").count();
        tracing::info!(iteration, examples = rows.len(), generated, "training");
        let examples: Vec<SftExample> = rows
            .iter()
            .map(|row| SftExample { prompt: dataset::prompt(&row.question), completion: dataset::completion(&row.answer) })
            .collect();

        // With `continue_from_previous_adapter` the adapter comes from disk
        // even when it is in memory, so a resumed run starts from the same
        // bytes as an uninterrupted one.
        let previous_adapter = (self.config.run.continue_from_previous_adapter && iteration > 0)
            .then(|| iteration_dir(&self.run_dir, iteration - 1).join("adapter"));
        let lora = self.config.lora_config();
        let train = self.config.train_config();
        let adapter_dir = dir.join("adapter");
        let abort = self.abort;

        let bar = progress_bar(estimate_steps(examples.len(), &train), format!("train {iteration}"));
        let step_bar = bar.clone();
        let mut student = self.take_student().await?;
        self.adapter_iteration = None;
        let (student, result) = tokio::task::spawn_blocking(move || {
            let result = (|| -> anyhow::Result<Vec<StepMetrics>> {
                match &previous_adapter {
                    Some(path) => student
                        .load_adapter(path)
                        .with_context(|| format!("failed to load the previous adapter {}", path.display()))?,
                    None => student.init_adapter(&lora, train.seed).context("failed to create a fresh adapter")?,
                }
                let mut on_step = |metrics: &StepMetrics| {
                    if metrics.step as u64 > step_bar.length().unwrap_or(0) {
                        step_bar.set_length(metrics.step as u64);
                    }
                    step_bar.set_position(metrics.step as u64);
                    step_bar.set_message(format!("loss {:.4}", metrics.loss));
                    abort.check(Phase::Train, iteration);
                };
                let metrics = student.train(&examples, &train, &mut on_step).context("training failed")?;
                save_adapter(&student, &adapter_dir)?;
                Ok(metrics)
            })();
            (student, result)
        })
        .await
        .context("the training task panicked")?;
        bar.finish_and_clear();
        self.student = Some(student);
        let metrics = result?;
        self.adapter_iteration = Some(iteration);

        let final_loss = metrics.last().map(|metrics| metrics.loss);
        let tokens: usize = metrics.iter().map(|metrics| metrics.tokens).sum();
        tracing::info!(iteration, steps = metrics.len(), final_loss, "training done");
        let summary = json!({
            "examples": rows.len(),
            "seed_examples": rows.len() - generated,
            "generated_examples": generated,
            "steps": metrics.len(),
            "tokens": tokens,
            "final_loss": final_loss,
        });

        let mut tx = self.pool.begin().await.context("failed to start a transaction")?;
        for step in &metrics {
            let row = TrainingMetricRow {
                run_id: self.run.id,
                iteration,
                step: step.step as i64,
                epoch: step.epoch as i64,
                loss: step.loss,
                lr: step.lr,
                grad_norm: Some(step.grad_norm).filter(|norm| norm.is_finite()),
                tokens: step.tokens as i64,
            };
            store::insert_training_metric(&mut *tx, &row).await.context("failed to store training metrics")?;
        }
        store::finish_phase(&mut *tx, self.run.id, iteration, Phase::Train, &summary.to_string(), self.phase_seconds())
            .await
            .context("failed to record the end of training")?;
        tx.commit().await.context("failed to commit the training results")?;
        Ok(())
    }
}

/// Optimizer steps a training run will take, for the progress bar only.
fn estimate_steps(examples: usize, train: &crate::student::TrainConfig) -> u64 {
    let micro_batches = examples.div_ceil(train.micro_batch_size.max(1));
    let steps_per_epoch = micro_batches.div_ceil(train.gradient_accumulation.max(1));
    (steps_per_epoch * train.epochs) as u64
}

/// Writes the adapter beside its final place, then swaps it in, so the
/// final folder never holds a partly written adapter.
fn save_adapter(student: &Student, adapter_dir: &Path) -> anyhow::Result<()> {
    let partial = adapter_dir.with_extension("partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("failed to remove {}", partial.display()))?;
    }
    student.save_adapter(&partial).with_context(|| format!("failed to save the adapter to {}", partial.display()))?;
    if adapter_dir.exists() {
        fs::remove_dir_all(adapter_dir).with_context(|| format!("failed to remove {}", adapter_dir.display()))?;
    }
    fs::rename(&partial, adapter_dir)
        .with_context(|| format!("failed to move the adapter to {}", adapter_dir.display()))
}

/// Writes D_n as jsonl with each example's provenance.
fn write_training_set(path: &Path, rows: &[ExampleRow]) -> anyhow::Result<()> {
    let partial = path.with_extension("jsonl.partial");
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(fs::File::create(&partial)?);
        for row in rows {
            let line = json!({
                "id": row.id,
                "kind": row.kind,
                "question": row.question,
                "answer": row.answer,
                "parent_id": row.parent_id,
                "iteration": row.iteration,
            });
            writeln!(file, "{line}")?;
        }
        file.into_inner().map_err(|err| err.into_error())?.sync_all()?;
        fs::rename(&partial, path)
    };
    write().with_context(|| format!("failed to write the training set {}", path.display()))
}
