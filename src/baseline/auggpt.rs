//! AugGPT (Dai et al., 2023): the teacher rephrases every seed question,
//! and each rephrasing keeps its seed's answer unchanged.
//!
//! Every request goes through the teacher's journaled client, so a resumed
//! baseline replays answered calls from the journal instead of the API. A
//! seed example that gets fewer usable rephrasings than it needs (rejected
//! items, near copies, a failed call) is asked again with the next
//! `sample_index`, up to a per-example call limit, so that a baseline
//! matched to another run reaches the same number of examples when the
//! teacher allows it. The requests of each round depend only on the earlier
//! rounds' journaled replies, so a resume sends the same requests again and
//! the journal answers them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use crate::teacher::{AugmentOutcome, AugmentRequest, Purpose, RejectReason, Teacher};

/// The teacher as AugGPT uses it: returns one outcome per rephrasing
/// request of a batch, in request order.
pub trait Rephraser {
    fn rephrase(
        &self,
        run_id: i64,
        iteration: i64,
        requests: &[AugmentRequest],
    ) -> impl Future<Output = anyhow::Result<Vec<AugmentOutcome>>>;
}

impl Rephraser for Teacher {
    fn rephrase(
        &self,
        run_id: i64,
        iteration: i64,
        requests: &[AugmentRequest],
    ) -> impl Future<Output = anyhow::Result<Vec<AugmentOutcome>>> {
        let requests = requests.to_vec();
        async move {
            Ok(self
                .augment(run_id, iteration, Purpose::AugGpt, requests)
                .await?)
        }
    }
}

/// A seed example to rephrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedQuestion {
    /// `examples.id` of the seed example.
    pub id: i64,
    pub question: String,
    pub answer: String,
}

/// An accepted rephrasing with its seed's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rephrasing {
    pub seed_example_id: i64,
    /// `teacher_calls.id` of the call that wrote it.
    pub call_id: i64,
    pub question: String,
    pub answer: String,
}

/// An item the teacher returned that was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRephrasing {
    pub seed_example_id: i64,
    pub call_id: i64,
    pub reason: String,
    pub text: String,
}

/// The outcome of rephrasing a seed set: examples, rejections and calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RephraseReport {
    pub accepted: Vec<Rephrasing>,
    pub rejected: Vec<RejectedRephrasing>,
    pub calls: usize,
    pub from_journal: usize,
    pub failed_calls: usize,
    /// Usable items beyond what their seed example needed; dropped.
    pub surplus: usize,
    /// Rephrasings still missing after the call limit, over all seeds.
    pub shortfall: usize,
}

/// Settings of one rephrasing pass.
#[derive(Debug, Clone, Copy)]
pub struct RephrasePlan<'a> {
    pub run_id: i64,
    pub iteration: i64,
    /// Rephrasings wanted per seed example, parallel to the seed slice.
    pub counts: &'a [usize],
    /// Calls per seed example at most; the first call is sample index 0.
    pub max_calls_per_example: u32,
    /// Requests sent to the teacher together.
    pub batch_size: usize,
}

/// Rephrases each seed question `plan.counts[i]` times. `admit` decides
/// whether a rephrased question is new enough to keep, or why not. It sees
/// every candidate once, in a fixed order, and should remember what it
/// admits (the teacher's `Validator` does).
pub async fn rephrase_seeds<R: Rephraser>(
    teacher: &R,
    seeds: &[SeedQuestion],
    plan: RephrasePlan<'_>,
    admit: &mut dyn FnMut(&str) -> Result<(), RejectReason>,
) -> anyhow::Result<RephraseReport> {
    anyhow::ensure!(
        seeds.len() == plan.counts.len(),
        "{} seed examples but {} counts",
        seeds.len(),
        plan.counts.len()
    );
    let index_of: HashMap<i64, usize> = seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| (seed.id, i))
        .collect();
    let mut remaining = plan.counts.to_vec();
    let mut report = RephraseReport::default();

    for round in 0..plan.max_calls_per_example {
        let requests: Vec<AugmentRequest> = seeds
            .iter()
            .zip(&remaining)
            .filter(|(_, left)| **left > 0)
            .map(|(seed, _)| AugmentRequest {
                seed_example_id: seed.id,
                question: seed.question.clone(),
                answer: seed.answer.clone(),
                student_output: None,
                sample_index: round,
            })
            .collect();
        if requests.is_empty() {
            break;
        }
        if round > 0 {
            tracing::info!(
                round,
                seeds = requests.len(),
                "asking again for missing rephrasings"
            );
        }

        for batch in requests.chunks(plan.batch_size.max(1)) {
            let outcomes = teacher.rephrase(plan.run_id, plan.iteration, batch).await?;
            anyhow::ensure!(
                outcomes.len() == batch.len(),
                "the teacher returned {} outcomes for {} requests",
                outcomes.len(),
                batch.len()
            );
            for outcome in outcomes {
                let Some(&index) = index_of.get(&outcome.seed_example_id) else {
                    anyhow::bail!(
                        "the teacher returned an outcome for example {}, which was not requested",
                        outcome.seed_example_id
                    );
                };
                take_outcome(
                    &mut report,
                    &seeds[index],
                    &mut remaining[index],
                    outcome,
                    admit,
                );
            }
        }
    }

    report.shortfall = remaining.iter().sum();
    Ok(report)
}

fn take_outcome(
    report: &mut RephraseReport,
    seed: &SeedQuestion,
    remaining: &mut usize,
    outcome: AugmentOutcome,
    admit: &mut dyn FnMut(&str) -> Result<(), RejectReason>,
) {
    report.calls += 1;
    report.from_journal += usize::from(outcome.from_journal);
    if let Some(error) = &outcome.error {
        report.failed_calls += 1;
        tracing::warn!(
            seed_example_id = seed.id,
            call_id = outcome.call_id,
            "teacher call failed: {error}"
        );
    }
    for item in outcome.items {
        if *remaining == 0 {
            report.surplus += 1;
            continue;
        }
        if let Err(reason) = admit(&item.question) {
            report.rejected.push(RejectedRephrasing {
                seed_example_id: seed.id,
                call_id: outcome.call_id,
                reason: reason.as_str().to_string(),
                text: item.question,
            });
            continue;
        }
        // AugGPT keeps the seed's answer: only the wording of the question
        // changes, whatever solution the teacher wrote.
        report.accepted.push(Rephrasing {
            seed_example_id: seed.id,
            call_id: outcome.call_id,
            question: item.question,
            answer: seed.answer.clone(),
        });
        *remaining -= 1;
    }
    for (reason, text) in outcome.rejected {
        report.rejected.push(RejectedRephrasing {
            seed_example_id: seed.id,
            call_id: outcome.call_id,
            reason,
            text,
        });
    }
}

/// Counts rejected items by reason, for phase summaries.
pub fn rejected_by_reason(rejected: &[RejectedRephrasing]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in rejected {
        *counts.entry(item.reason.clone()).or_default() += 1;
    }
    counts
}
