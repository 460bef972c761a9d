//! The evaluation phases: greedy, batched generation on the seed or test
//! set with the iteration's adapter, each output scored and stored with the
//! raw text, the extracted answer and the rule that decided.

use anyhow::Context;
use serde_json::json;

use super::{dataset, progress_bar, Driver};
use crate::store::{self, ExampleKind, Phase, PredictionRow};

impl Driver {
    pub(super) async fn evaluate(&mut self, iteration: i64, kind: ExampleKind) -> anyhow::Result<()> {
        let phase = match kind {
            ExampleKind::Test => Phase::EvalTest,
            _ => Phase::EvalSeed,
        };
        let examples = store::examples_of_kind(&self.pool, self.run.id, kind)
            .await
            .with_context(|| format!("failed to read the {} examples", kind.as_str()))?;
        let prompts: Vec<String> = examples.iter().map(|example| dataset::prompt(&example.question)).collect();
        let generate = self.config.generate_config();

        let bar = progress_bar(prompts.len() as u64, format!("{phase} {iteration}"));
        let mut student = self.take_trained_student(iteration).await?;
        let mut outputs = Vec::with_capacity(prompts.len());
        // One blocking task per generation batch keeps the progress bar moving
        // and lets the abort hook fire between batches.
        for (index, batch) in prompts.chunks(generate.batch_size.max(1)).enumerate() {
            let batch = batch.to_vec();
            let config = generate.clone();
            let (returned, result) = tokio::task::spawn_blocking(move || {
                let result = student.generate(&batch, &config);
                (student, result)
            })
            .await
            .context("the generation task panicked")?;
            student = returned;
            let generations = match result {
                Ok(generations) => generations,
                Err(err) => {
                    self.student = Some(student);
                    return Err(err.context("generation failed"));
                }
            };
            bar.inc(generations.len() as u64);
            outputs.extend(generations.into_iter().map(|generation| generation.text));
            if index == 0 {
                self.abort.check(phase, iteration);
            }
        }
        self.student = Some(student);
        bar.finish_and_clear();
        anyhow::ensure!(
            outputs.len() == examples.len(),
            "the student returned {} outputs for {} prompts",
            outputs.len(),
            examples.len()
        );

        let predictions: Vec<PredictionRow> = examples
            .iter()
            .zip(outputs)
            .map(|(example, output)| {
                let scored = dataset::score(&output, &example.answer);
                PredictionRow {
                    run_id: self.run.id,
                    iteration,
                    example_id: example.id,
                    output,
                    extracted: scored.extracted,
                    rule: scored.rule,
                    correct: scored.correct,
                }
            })
            .collect();
        let correct = predictions.iter().filter(|prediction| prediction.correct).count();
        let total = predictions.len();
        let accuracy = if total == 0 { 0.0 } else { correct as f64 / total as f64 };
        tracing::info!(iteration, %phase, correct, total, "accuracy {:.2}%", 100.0 * accuracy);
        let summary = json!({
            "total": total,
            "correct": correct,
            "misses": total - correct,
            "accuracy": accuracy,
        });

        let mut tx = self.pool.begin().await.context("failed to start a transaction")?;
        for prediction in &predictions {
            store::insert_prediction(&mut *tx, prediction).await.context("failed to store a prediction")?;
        }
        store::finish_phase(&mut *tx, self.run.id, iteration, phase, &summary.to_string(), self.phase_seconds())
            .await
            .with_context(|| format!("failed to record the end of {phase}"))?;
        tx.commit().await.with_context(|| format!("failed to commit the results of {phase}"))?;
        Ok(())
    }
}
