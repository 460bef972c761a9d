//! A baseline's augment phase: generates examples from every seed example
//! (EDA or AugGPT) and records them, with their seed parents, as generated
//! examples of iteration [`AUGMENT_ITERATION`], so they join the training
//! set of iteration 0.
//!
//! The examples, the rejected items and the phase's 'done' row are written
//! in one transaction, so a phase is either complete or redone from scratch
//! on resume. EDA's output depends only on its seed and settings, and
//! AugGPT's teacher calls are replayed from the journal, so a redone phase
//! records the same examples.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use sqlx::SqlitePool;

use super::auggpt::{self, RephrasePlan, Rephraser, SeedQuestion};
use super::eda::{self, EdaConfig};
use super::wordnet::WordNet;
use super::{AUGMENT_ITERATION, BaselineSettings, Method};
use crate::store::{self, ExampleKind, NewGenerated, NewRejectedItem, Phase};
use crate::teacher::Validator;

/// One example to store: its seed parent, text and the call that wrote it.
struct Generated {
    parent_id: i64,
    teacher_call_id: Option<i64>,
    question: String,
    answer: String,
}

/// The teacher as AugGPT uses it, with the settings of its calls.
pub struct AugGptTeacher<'a, R> {
    pub client: &'a R,
    /// Requests sent together.
    pub batch_size: usize,
    /// ROUGE-L F1 above which a rephrasing counts as a near copy.
    pub rouge_threshold: f64,
}

/// Runs the augment phase of a baseline unless it is already done; does
/// nothing for plain fine-tuning. AugGPT needs `teacher`. Returns the number
/// of generated examples the run has.
pub async fn generate_examples<R: Rephraser>(
    pool: &SqlitePool,
    run_id: i64,
    settings: &BaselineSettings,
    teacher: Option<AugGptTeacher<'_, R>>,
) -> anyhow::Result<usize> {
    if settings.method == Method::Finetune {
        return Ok(0);
    }
    let done = store::phase(pool, run_id, AUGMENT_ITERATION, Phase::Augment)
        .await
        .context("failed to read the augment phase")?
        .is_some_and(|row| row.status == "done");
    if !done {
        store::start_phase(pool, run_id, AUGMENT_ITERATION, Phase::Augment)
            .await
            .context("failed to record the start of the augment phase")?;
        let started = Instant::now();
        if let Err(err) = run_phase(pool, run_id, settings, teacher, started).await {
            let seconds = started.elapsed().as_secs_f64();
            if let Err(db_err) =
                store::fail_phase(pool, run_id, AUGMENT_ITERATION, Phase::Augment, seconds).await
            {
                tracing::error!(
                    run_id,
                    "failed to record the failed augment phase: {db_err}"
                );
            }
            return Err(err.context("the baseline's augment phase failed"));
        }
    } else {
        tracing::info!(run_id, "the augment phase is already done; skipping it");
    }
    let count = super::store::count_generated(pool, run_id)
        .await
        .context("failed to count the generated examples")?;
    Ok(count as usize)
}

async fn run_phase<R: Rephraser>(
    pool: &SqlitePool,
    run_id: i64,
    settings: &BaselineSettings,
    teacher: Option<AugGptTeacher<'_, R>>,
    started: Instant,
) -> anyhow::Result<()> {
    let seeds = store::examples_of_kind(pool, run_id, ExampleKind::Seed)
        .await
        .context("failed to read the seed examples")?;
    let counts = settings.counts(seeds.len());
    let wanted: usize = counts.iter().sum();
    let seeds: Vec<SeedQuestion> = seeds
        .into_iter()
        .map(|row| SeedQuestion {
            id: row.id,
            question: row.question,
            answer: row.answer,
        })
        .collect();
    tracing::info!(
        run_id,
        method = settings.method.as_str(),
        seeds = seeds.len(),
        wanted,
        "generating examples"
    );

    let (generated, rejected, mut summary) = match settings.method {
        Method::Finetune => (Vec::new(), Vec::new(), json!({})),
        Method::Eda => {
            let generated = generate_eda(&seeds, &counts, settings).await?;
            (
                generated,
                Vec::new(),
                json!({ "eda": settings.eda, "eda_seed": settings.eda_seed }),
            )
        }
        Method::AugGpt => {
            let teacher = teacher.context("AugGPT needs a teacher client")?;
            generate_auggpt(pool, run_id, &seeds, &counts, settings, teacher).await?
        }
    };
    if generated.len() < wanted {
        tracing::warn!(
            run_id,
            wanted,
            generated = generated.len(),
            "generated fewer examples than wanted; the teacher's replies fell short after every allowed call"
        );
    }

    summary["method"] = json!(settings.method.as_str());
    summary["seed_examples"] = json!(seeds.len());
    summary["wanted"] = json!(wanted);
    summary["accepted"] = json!(generated.len());
    summary["matched_run"] = json!(settings.matched);

    let mut tx = pool
        .begin()
        .await
        .context("failed to start a transaction")?;
    for (position, example) in generated.iter().enumerate() {
        let row = NewGenerated {
            run_id,
            parent_id: example.parent_id,
            iteration: AUGMENT_ITERATION,
            method: settings.method.as_str(),
            teacher_call_id: example.teacher_call_id,
            position: position as i64,
            question: &example.question,
            answer: &example.answer,
        };
        store::insert_generated_example(&mut *tx, &row)
            .await
            .context("failed to store a generated example")?;
    }
    for item in &rejected {
        let row = NewRejectedItem {
            run_id,
            iteration: AUGMENT_ITERATION,
            call_id: Some(item.call_id),
            seed_example_id: Some(item.seed_example_id),
            reason: &item.reason,
            text: &item.text,
        };
        store::insert_rejected_item(&mut *tx, &row)
            .await
            .context("failed to store a rejected item")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    store::finish_phase(
        &mut *tx,
        run_id,
        AUGMENT_ITERATION,
        Phase::Augment,
        &summary.to_string(),
        seconds,
    )
    .await
    .context("failed to record the end of the augment phase")?;
    tx.commit()
        .await
        .context("failed to commit the generated examples")?;
    tracing::info!(
        run_id,
        generated = generated.len(),
        seconds,
        "augment phase done"
    );
    Ok(())
}

async fn generate_eda(
    seeds: &[SeedQuestion],
    counts: &[usize],
    settings: &BaselineSettings,
) -> anyhow::Result<Vec<Generated>> {
    let dir = settings.wordnet_dir.clone();
    let config: EdaConfig = settings.eda;
    let seed = settings.eda_seed;
    let pairs: Vec<(String, String)> = seeds
        .iter()
        .map(|seed| (seed.question.clone(), seed.answer.clone()))
        .collect();
    let counts = counts.to_vec();
    // Loading WordNet reads about 28 MB and parsing is CPU work, so both
    // run off the async threads.
    let augmented =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<eda::AugmentedExample>> {
            let wordnet = WordNet::open(&dir)?;
            Ok(eda::augment_examples(
                &pairs, &counts, &config, seed, &wordnet,
            )?)
        })
        .await
        .context("the EDA task panicked")??;

    Ok(augmented
        .into_iter()
        .map(|example| Generated {
            parent_id: seeds[example.seed_index].id,
            teacher_call_id: None,
            question: example.question,
            answer: example.answer,
        })
        .collect())
}

type AugGptResult = (
    Vec<Generated>,
    Vec<auggpt::RejectedRephrasing>,
    serde_json::Value,
);

async fn generate_auggpt<R: Rephraser>(
    pool: &SqlitePool,
    run_id: i64,
    seeds: &[SeedQuestion],
    counts: &[usize],
    settings: &BaselineSettings,
    teacher: AugGptTeacher<'_, R>,
) -> anyhow::Result<AugGptResult> {
    let mut existing: Vec<String> = seeds.iter().map(|seed| seed.question.clone()).collect();
    let generated_rows = store::examples_of_kind(pool, run_id, ExampleKind::Generated)
        .await
        .context("failed to read the run's generated questions")?;
    existing.extend(generated_rows.into_iter().map(|row| row.question));
    // The same near-copy check as LLM2LLM's generated examples, so a
    // rephrasing too close to its seed is rejected the same way.
    let mut validator = Validator::new(teacher.rouge_threshold, existing);
    let mut admit = |question: &str| validator.admit(question);

    let plan = RephrasePlan {
        run_id,
        iteration: AUGMENT_ITERATION,
        counts,
        max_calls_per_example: settings.max_calls_per_example.max(1),
        batch_size: teacher.batch_size,
    };
    let report = auggpt::rephrase_seeds(teacher.client, seeds, plan, &mut admit).await?;
    let summary = json!({
        "calls": report.calls,
        "from_journal": report.from_journal,
        "failed_calls": report.failed_calls,
        "surplus": report.surplus,
        "shortfall": report.shortfall,
        "rejected": auggpt::rejected_by_reason(&report.rejected),
    });
    let generated = report
        .accepted
        .into_iter()
        .map(|item| Generated {
            parent_id: item.seed_example_id,
            teacher_call_id: Some(item.call_id),
            question: item.question,
            answer: item.answer,
        })
        .collect();
    Ok((generated, report.rejected, summary))
}
