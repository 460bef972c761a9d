//! The augment phase sends every seed example missed in this iteration to
//! the teacher. The returned items that pass the near-copy check become
//! generated examples of this iteration. Each points at its seed parent and
//! at the teacher call that wrote it.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::json;

use super::{progress_bar, Driver};
use crate::store::{self, ExampleKind, NewGenerated, NewRejectedItem, Phase};
use crate::teacher::{AugmentOutcome, AugmentRequest, GeneratedExample, Purpose, Validator};

impl Driver {
    pub(super) async fn augment(&mut self, iteration: i64) -> anyhow::Result<()> {
        let run_id = self.run.id;
        let misses = store::seed_misses(&self.pool, run_id, iteration)
            .await
            .context("failed to read the seed misses")?;
        let sample_index = u32::try_from(iteration).context("the iteration number does not fit a sample index")?;
        let requests: Vec<AugmentRequest> = misses
            .into_iter()
            .map(|miss| AugmentRequest {
                seed_example_id: miss.example_id,
                question: miss.question,
                answer: miss.answer,
                student_output: Some(miss.output),
                // A seed example missed again in a later iteration needs new
                // samples, not the journaled reply of the earlier request.
                sample_index,
            })
            .collect();
        tracing::info!(iteration, misses = requests.len(), "sending the missed seed examples to the teacher");

        // Batches of `max_concurrent` requests keep the progress bar moving
        // and let the abort hook fire after some calls were journaled.
        let batch_size = self.config.teacher.max_concurrent.max(1);
        let abort = self.abort;
        let bar = progress_bar(requests.len() as u64, format!("augment {iteration}"));
        let teacher = self.teacher()?;
        let mut outcomes: Vec<AugmentOutcome> = Vec::with_capacity(requests.len());
        for (index, batch) in requests.chunks(batch_size).enumerate() {
            let answered = teacher
                .augment(run_id, iteration, Purpose::Llm2llm, batch.to_vec())
                .await
                .context("the teacher failed")?;
            anyhow::ensure!(
                answered.len() == batch.len(),
                "the teacher returned {} outcomes for {} requests",
                answered.len(),
                batch.len()
            );
            bar.inc(answered.len() as u64);
            outcomes.extend(answered);
            if index == 0 {
                abort.check(Phase::Augment, iteration);
            }
        }
        bar.finish_and_clear();

        let mut existing = Vec::new();
        for kind in [ExampleKind::Seed, ExampleKind::Generated] {
            let rows = store::examples_of_kind(&self.pool, run_id, kind)
                .await
                .context("failed to read the run's questions")?;
            existing.extend(rows.into_iter().map(|row| row.question));
        }
        // Items are checked in request order, then reply order, so the same
        // outcomes always admit the same items.
        let items: Vec<(&AugmentOutcome, &GeneratedExample)> =
            outcomes.iter().flat_map(|outcome| outcome.items.iter().map(move |item| (outcome, item))).collect();
        let questions: Vec<&str> = items.iter().map(|(_, item)| item.question.as_str()).collect();
        let mut validator = Validator::new(self.config.teacher.rouge_threshold, &existing);
        let verdicts = validator.admit_all(&questions);

        // The teacher has already recorded the items its own checks
        // rejected; the near-copy rejections are recorded here, with the
        // accepted examples.
        let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
        for outcome in &outcomes {
            for (reason, _) in &outcome.rejected {
                *rejected.entry(reason.clone()).or_default() += 1;
            }
        }
        let mut tx = self.pool.begin().await.context("failed to start a transaction")?;
        let mut position = 0_i64;
        for ((outcome, item), verdict) in items.iter().zip(verdicts) {
            if let Err(reason) = verdict {
                *rejected.entry(reason.as_str().to_string()).or_default() += 1;
                let text = format!("{}\n{}", item.question, item.answer);
                let rejected_item = NewRejectedItem {
                    run_id,
                    iteration,
                    call_id: Some(outcome.call_id),
                    seed_example_id: Some(outcome.seed_example_id),
                    reason: reason.as_str(),
                    text: &text,
                };
                store::insert_rejected_item(&mut *tx, &rejected_item)
                    .await
                    .context("failed to store a rejected item")?;
                continue;
            }
            let example = NewGenerated {
                run_id,
                parent_id: outcome.seed_example_id,
                iteration,
                method: "llm2llm",
                teacher_call_id: Some(outcome.call_id),
                position,
                question: &item.question,
                answer: &item.answer,
            };
            store::insert_generated_example(&mut *tx, &example)
                .await
                .context("failed to store a generated example")?;
            position += 1;
        }

        // The teacher logs each failed call, so one line with the count and
        // the first error is enough here.
        let failures: Vec<&AugmentOutcome> = outcomes.iter().filter(|outcome| outcome.error.is_some()).collect();
        let failed_calls = failures.len();
        let from_journal = outcomes.iter().filter(|outcome| outcome.from_journal).count();
        let returned_items: usize = outcomes.iter().map(|outcome| outcome.items.len() + outcome.rejected.len()).sum();
        let accepted = position as usize;
        tracing::info!(iteration, accepted, returned_items, failed_calls, "augmentation done");
        if let Some(first) = failures.first() {
            tracing::warn!(
                iteration,
                failed_calls,
                first_call_id = first.call_id,
                "some teacher calls failed, so their seed examples get no new examples in this iteration; the first error: {}",
                first.error.as_deref().unwrap_or_default()
            );
        }
        let summary = json!({
            "misses": outcomes.len(),
            "calls": outcomes.len(),
            "failed_calls": failed_calls,
            "from_journal": from_journal,
            "returned_items": returned_items,
            "accepted": accepted,
            "rejected": rejected,
        });
        store::finish_phase(&mut *tx, run_id, iteration, Phase::Augment, &summary.to_string(), self.phase_seconds())
            .await
            .context("failed to record the end of augmentation")?;
        tx.commit().await.context("failed to commit the generated examples")?;
        Ok(())
    }
}
