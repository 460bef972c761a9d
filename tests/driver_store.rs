//! Store functions against a fresh SQLite file per test: provenance rules,
//! training-set order, phase bookkeeping and transactional phase results.

use llm2llm::store::{self, ExampleKind, NewGenerated, NewRun, Phase, PredictionRow};
use sqlx::SqlitePool;

struct Fixture {
    _dir: tempfile::TempDir,
    pool: SqlitePool,
    run_id: i64,
    seeds: Vec<i64>,
    test_id: i64,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let pool = store::open(&dir.path().join("runs.db")).await.expect("open database");
    let run = NewRun {
        name: "demo",
        method: "llm2llm",
        config_json: "{}",
        seed_path: "/data/seed.jsonl",
        seed_sha256: "aa",
        test_path: Some("/data/test.jsonl"),
        test_sha256: Some("bb"),
    };
    let run_id = store::insert_run(&pool, &run).await.expect("insert run");
    let mut seeds = Vec::new();
    for line in 1..=3 {
        let id = store::insert_file_example(&pool, run_id, ExampleKind::Seed, &format!("seed q{line}"), "#### 1", line)
            .await
            .expect("insert seed");
        seeds.push(id);
    }
    let test_id = store::insert_file_example(&pool, run_id, ExampleKind::Test, "test q", "#### 2", 1)
        .await
        .expect("insert test");
    Fixture { _dir: dir, pool, run_id, seeds, test_id }
}

fn generated<'a>(run_id: i64, parent_id: i64, iteration: i64, position: i64, question: &'a str) -> NewGenerated<'a> {
    NewGenerated {
        run_id,
        parent_id,
        iteration,
        method: "llm2llm",
        teacher_call_id: None,
        position,
        question,
        answer: "#### 3",
    }
}

#[tokio::test]
async fn training_set_holds_seeds_then_earlier_generations() {
    let f = fixture().await;
    // Inserted out of order on purpose: the set is ordered by (iteration, position).
    store::insert_generated_example(&f.pool, &generated(f.run_id, f.seeds[1], 1, 0, "gen 1.0")).await.unwrap();
    store::insert_generated_example(&f.pool, &generated(f.run_id, f.seeds[0], 0, 1, "gen 0.1")).await.unwrap();
    store::insert_generated_example(&f.pool, &generated(f.run_id, f.seeds[2], 0, 0, "gen 0.0")).await.unwrap();

    let questions = |rows: Vec<store::ExampleRow>| rows.into_iter().map(|row| row.question).collect::<Vec<_>>();
    let d0 = questions(store::training_set(&f.pool, f.run_id, 0).await.unwrap());
    let d1 = questions(store::training_set(&f.pool, f.run_id, 1).await.unwrap());
    let d2 = questions(store::training_set(&f.pool, f.run_id, 2).await.unwrap());

    assert_eq!(d0, ["seed q1", "seed q2", "seed q3"]);
    assert_eq!(d1, ["seed q1", "seed q2", "seed q3", "gen 0.0", "gen 0.1"]);
    assert_eq!(d2, ["seed q1", "seed q2", "seed q3", "gen 0.0", "gen 0.1", "gen 1.0"]);
}

#[tokio::test]
async fn generated_example_needs_seed_parent() {
    let f = fixture().await;
    let seed_child = store::insert_generated_example(&f.pool, &generated(f.run_id, f.seeds[0], 0, 0, "ok")).await;
    assert!(seed_child.is_ok(), "a seed parent is accepted: {seed_child:?}");

    let child_id = seed_child.unwrap();
    let from_generated = store::insert_generated_example(&f.pool, &generated(f.run_id, child_id, 0, 1, "bad")).await;
    assert!(from_generated.is_err(), "a generated parent must be rejected");

    let from_test = store::insert_generated_example(&f.pool, &generated(f.run_id, f.test_id, 0, 2, "bad")).await;
    assert!(from_test.is_err(), "a test parent must be rejected");
}

#[tokio::test]
async fn seed_misses_lists_wrong_seed_predictions_only() {
    let f = fixture().await;
    let predictions = [(f.seeds[0], true), (f.seeds[1], false), (f.seeds[2], false), (f.test_id, false)];
    for (example_id, correct) in predictions {
        let row = PredictionRow {
            run_id: f.run_id,
            iteration: 0,
            example_id,
            output: format!("out {example_id}"),
            extracted: None,
            rule: "none".to_string(),
            correct,
        };
        store::insert_prediction(&f.pool, &row).await.unwrap();
    }

    let misses = store::seed_misses(&f.pool, f.run_id, 0).await.unwrap();
    let ids: Vec<i64> = misses.iter().map(|miss| miss.example_id).collect();
    assert_eq!(ids, [f.seeds[1], f.seeds[2]]);
    assert_eq!(misses[0].output, format!("out {}", f.seeds[1]));
    assert!(store::seed_misses(&f.pool, f.run_id, 1).await.unwrap().is_empty(), "iteration 1 has no predictions");
}

#[tokio::test]
async fn phase_seconds_add_up_over_attempts() {
    let f = fixture().await;
    store::start_phase(&f.pool, f.run_id, 0, Phase::Train).await.unwrap();
    store::fail_phase(&f.pool, f.run_id, 0, Phase::Train, 1.5).await.unwrap();
    store::start_phase(&f.pool, f.run_id, 0, Phase::Train).await.unwrap();
    let reopened = store::phase(&f.pool, f.run_id, 0, Phase::Train).await.unwrap().unwrap();
    assert_eq!(reopened.status, "running");

    store::finish_phase(&f.pool, f.run_id, 0, Phase::Train, "{}", 2.0).await.unwrap();
    let done = store::phase(&f.pool, f.run_id, 0, Phase::Train).await.unwrap().unwrap();
    assert_eq!(done.status, "done");
    assert_eq!(done.seconds, 3.5);
}

#[tokio::test]
async fn start_phase_leaves_done_phase_done() {
    let f = fixture().await;
    store::finish_phase(&f.pool, f.run_id, 0, Phase::EvalSeed, "{\"correct\":1}", 1.0).await.unwrap();
    store::start_phase(&f.pool, f.run_id, 0, Phase::EvalSeed).await.unwrap();
    let row = store::phase(&f.pool, f.run_id, 0, Phase::EvalSeed).await.unwrap().unwrap();
    assert_eq!(row.status, "done");
    assert_eq!(row.summary_json.as_deref(), Some("{\"correct\":1}"));
}

#[tokio::test]
async fn uncommitted_phase_leaves_no_results() {
    let f = fixture().await;
    store::start_phase(&f.pool, f.run_id, 0, Phase::Augment).await.unwrap();
    {
        let mut tx = f.pool.begin().await.unwrap();
        store::insert_generated_example(&mut *tx, &generated(f.run_id, f.seeds[0], 0, 0, "lost")).await.unwrap();
        store::finish_phase(&mut *tx, f.run_id, 0, Phase::Augment, "{}", 1.0).await.unwrap();
        // Dropped without commit, as when the process dies mid-phase.
    }
    let generated = store::examples_of_kind(&f.pool, f.run_id, ExampleKind::Generated).await.unwrap();
    let phase = store::phase(&f.pool, f.run_id, 0, Phase::Augment).await.unwrap().unwrap();
    assert!(generated.is_empty(), "rolled-back examples must not remain: {generated:?}");
    assert_eq!(phase.status, "running");
}

#[tokio::test]
async fn find_run_accepts_name_or_id() {
    let f = fixture().await;
    let mut conn = f.pool.acquire().await.unwrap();
    let by_name = store::find_run(&mut conn, "demo").await.unwrap().map(|run| run.id);
    let by_id = store::find_run(&mut conn, &f.run_id.to_string()).await.unwrap().map(|run| run.id);
    let missing = store::find_run(&mut conn, "nope").await.unwrap();
    assert_eq!(by_name, Some(f.run_id));
    assert_eq!(by_id, Some(f.run_id));
    assert!(missing.is_none());
}

#[tokio::test]
async fn run_status_stamps_finish_time() {
    let f = fixture().await;
    store::set_run_status(&f.pool, f.run_id, "finished", Some("no misses")).await.unwrap();
    let mut conn = f.pool.acquire().await.unwrap();
    let run = store::find_run(&mut conn, "demo").await.unwrap().unwrap();
    assert_eq!(run.status, "finished");
    assert_eq!(run.stop_reason.as_deref(), Some("no misses"));
    assert!(run.finished_at.is_some(), "finished_at must be set");
}
